"""Sites' time zones from one database: the `tzdata` package's IANA rules, newer than many systems' copies.

Every site day (today's totals, daily reports, shifts, labels) and every time the dashboard shows follow these
rules, so a zone whose rules changed lately (Morocco left UTC+1 in 2026) is right even on a server whose
system zone files are older. The dashboard gets each site's UTC offsets from here instead of from the browser's
own copy (`utc_offsets`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzdata

RULES_VERSION = tzdata.IANA_VERSION
OFFSETS_FROM_YEAR = 2000
OFFSETS_YEARS_AHEAD = 2


class UnknownZoneError(ValueError):
    """A name that is not an IANA time zone."""


@lru_cache(maxsize=256)
def site_zone(name: str) -> ZoneInfo:
    """The zone called ``name`` (e.g. "Africa/Casablanca") by the `tzdata` package, else by the system's files."""
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") for p in parts):
        raise UnknownZoneError(f"unknown time zone {name!r}")
    entry = resources.files("tzdata.zoneinfo").joinpath(*parts)
    if entry.is_file():
        with entry.open("rb") as data:
            return ZoneInfo.from_file(data, key=name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownZoneError(f"unknown time zone {name!r}") from None


@lru_cache(maxsize=256)
def _offsets(name: str, first_year: int, last_year: int) -> tuple[tuple[datetime, int], ...]:
    zone = site_zone(name)
    start = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)

    def minutes(t: datetime) -> int:
        offset = t.astimezone(zone).utcoffset()
        return int(offset.total_seconds() // 60) if offset is not None else 0

    changes = [(start, minutes(start))]
    step = timedelta(hours=6)
    at = start
    while at < end:
        following = at + step
        if minutes(following) != changes[-1][1]:
            low, high = 0, int(step.total_seconds() // 60)  # the change lies in (at + low, at + high] minutes: halve
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if minutes(at + timedelta(minutes=mid)) == changes[-1][1] else (low, mid)
            changes.append((at + timedelta(minutes=high), minutes(following)))
        at = following
    return tuple(changes)


def utc_offsets(name: str, now: datetime | None = None) -> list[tuple[datetime, int]]:
    """The zone's UTC offset (minutes east) from each change on, 2000-01-01 to two years past ``now``.

    Shape: [(first UTC instant it holds, offset in minutes)], oldest first; the first entry holds from 2000-01-01.
    """
    year = (now or datetime.now(UTC)).year
    return list(_offsets(name, OFFSETS_FROM_YEAR, year + OFFSETS_YEARS_AHEAD))
