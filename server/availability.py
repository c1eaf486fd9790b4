"""Device availability from heartbeat gaps, and the models a device ran, from the minutes it reached the server.

Every ingest (events or a heartbeat) marks its UTC minute in ``device_minutes`` with the models the device
named. A device is *down* over any run of whole minutes without contact that lasts at least
``offline_after_s`` (the same limit that shows it offline on the dashboard), and before its first contact or
after its last one in a period by the same rule. Devices send a heartbeat every 30 s, so a healthy device
marks every minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.aggregates import as_utc
from server.db import upsert_insert
from server.models import DeviceMinute

MINUTE = timedelta(minutes=1)


def record_contact(session: Session, site_id: str, device_id: str, at: datetime, model: str) -> None:
    """Mark ``at``'s minute as one the device was seen in (the first contact of a minute names its models)."""
    stmt = (
        upsert_insert(session, DeviceMinute.__table__)
        .values(device_id=device_id, minute=as_utc(at).replace(second=0, microsecond=0), site_id=site_id, model=model[:200])
        .on_conflict_do_nothing(index_elements=["device_id", "minute"])
    )
    session.execute(stmt)


@dataclass(frozen=True)
class Availability:
    """One device over [start, end): seconds up and down, the gaps it was down in, and the models it named."""

    device: str
    start: datetime
    end: datetime
    down: tuple[tuple[datetime, datetime], ...]
    models: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def down_s(self) -> float:
        return sum((b - a).total_seconds() for a, b in self.down)

    @property
    def share(self) -> float | None:
        """Share of the period the device was up (0-1); None for an empty period."""
        return None if self.seconds <= 0 else round(1 - self.down_s / self.seconds, 4)


def down_gaps(seen: list[datetime], start: datetime, end: datetime, offline_after_s: float) -> list[tuple[datetime, datetime]]:
    """Where a device was down in [start, end) (minute-aligned UTC), given the sorted minutes it was ``seen`` in
    (which may begin before ``start``): every run of at least ``offline_after_s`` worth of unseen minutes."""
    if end <= start:
        return []
    shortest = max(1, math.ceil(offline_after_s / 60))
    gaps: list[tuple[datetime, datetime]] = []
    previous_end: datetime | None = None  # the end of the last minute seen
    for minute in [*seen, end]:
        free_from = previous_end if previous_end is not None else start - shortest * MINUTE
        if minute - free_from >= shortest * MINUTE:
            a, b = max(free_from, start), min(minute, end)
            if b > a:
                gaps.append((a, b))
        previous_end = minute + MINUTE
    return gaps


def availability(session: Session, site_id: str, device_id: str, start: datetime, end: datetime, offline_after_s: float) -> Availability:
    """``device_id``'s availability over [start, end) in whole minutes (UTC; the caller clips ``end`` to now, and
    the minute now runs in is counted)."""
    start = as_utc(start).replace(second=0, microsecond=0)
    end_floor = as_utc(end).replace(second=0, microsecond=0)
    end = end_floor if end_floor == as_utc(end) else end_floor + MINUTE  # the running minute counts
    look_back = start - math.ceil(offline_after_s / 60) * MINUTE
    rows = session.execute(
        select(DeviceMinute.minute, DeviceMinute.model)
        .where(
            DeviceMinute.device_id == device_id,
            DeviceMinute.site_id == site_id,
            DeviceMinute.minute >= look_back,
            DeviceMinute.minute < end,
        )
        .order_by(DeviceMinute.minute)
    ).all()
    seen = [as_utc(m) for m, _ in rows]
    models = tuple(sorted({model for m, model in rows if as_utc(m) >= start and model}))
    return Availability(device_id, start, end, tuple(down_gaps(seen, start, end, offline_after_s)), models)
