"""Event ids: UUIDv7 (RFC 9562), made on the device — time-ordered and unique without coordination."""

from __future__ import annotations

import os
import time
import uuid


def new_event_id(now_ms: int | None = None) -> str:
    """A UUIDv7 string: 48 bits of Unix milliseconds, version 7, variant 10, 74 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))
