"""Shifts of a site, in its own time zone, and the UTC period one shift covers on a given day.

A shift is ``name``, ``start`` and ``end`` as ``HH:MM`` local wall-clock times. An end at or before the start
runs into the next day (``22:00``–``06:00``); equal times make a 24-hour shift. ``date`` always names the day
the shift starts on. Across a daylight-saving change a shift is as long as the wall clock says (7 or 9 hours
for an 8-hour shift on the night the clocks move).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.auth import AdminError
from server.models import Shift, Site

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


@dataclass(frozen=True)
class ShiftPeriod:
    """One shift on one day: [start, end) as aware UTC datetimes, and the local day it starts on."""

    name: str
    day: date
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _clock(value: str, field: str) -> time:
    if not HHMM.match(value):
        raise AdminError(f"{field} {value!r} is not a time of day as HH:MM (24-hour clock, e.g. 06:00 or 22:30)")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def set_shift(session: Session, site_id: str, name: str, start: str, end: str) -> Shift:
    """Create or replace the shift ``name`` of a site."""
    if session.get(Site, site_id) is None:
        raise AdminError(f"unknown site {site_id!r}: create it first with `farz server admin create-site`")
    if not NAME.match(name):
        raise AdminError(f"shift name {name!r}: use 1-64 letters, digits, spaces, '_', '.' or '-', starting with a letter or digit")
    _clock(start, "start")
    _clock(end, "end")
    row = session.execute(select(Shift).where(Shift.site_id == site_id, Shift.name == name)).scalar_one_or_none()
    if row is None:
        row = Shift(site_id=site_id, name=name, created=datetime.now(UTC))
        session.add(row)
    row.start, row.end = start, end
    session.flush()
    return row


def delete_shift(session: Session, site_id: str, shift_id: int) -> None:
    row = session.get(Shift, shift_id)
    if row is None or row.site_id != site_id:
        raise AdminError(f"no shift {shift_id} on site {site_id!r}")
    session.delete(row)


def shifts_of(session: Session, site_id: str) -> list[Shift]:
    return list(session.execute(select(Shift).where(Shift.site_id == site_id).order_by(Shift.start, Shift.name)).scalars())


def find_shift(session: Session, site_id: str, name: str) -> Shift:
    """The shift called ``name``; the error lists the site's shifts."""
    row = session.execute(select(Shift).where(Shift.site_id == site_id, Shift.name == name)).scalar_one_or_none()
    if row is None:
        known = ", ".join(s.name for s in shifts_of(session, site_id)) or "none yet (add one with `farz server admin set-shift`)"
        raise AdminError(f"site {site_id!r} has no shift {name!r}; its shifts: {known}")
    return row


def period_of(shift: Shift, day: date, tz: ZoneInfo) -> ShiftPeriod:
    """The UTC period ``shift`` covers when it starts on local ``day``."""
    start_clock, end_clock = _clock(shift.start, "start"), _clock(shift.end, "end")
    start = datetime.combine(day, start_clock, tzinfo=tz)
    end_day = day if end_clock > start_clock else day + timedelta(days=1)
    end = datetime.combine(end_day, end_clock, tzinfo=tz)
    return ShiftPeriod(shift.name, day, start.astimezone(UTC), end.astimezone(UTC))
