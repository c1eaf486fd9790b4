"""Aggregate reads from the rollups, bucketed in the site's own time zone; never from raw events.

minute and hour buckets come from the UTC minute and hour rollups (a site whose UTC offset is not a
whole number of hours gets hour buckets that start at its local half hour); day and week buckets come
from the per-local-day rollup, weeks starting on Monday.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from server.models import Device, RollupDay, RollupHour, RollupMinute, Site, TimeLabel
from server.schemas import DeviceHealth, PeriodTotals
from server.zones import site_zone

BUCKETS = ("minute", "hour", "day", "week")


def as_utc(value: datetime) -> datetime:
    """Aware UTC datetime (SQLite hands back naive UTC values)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def series(
    session: Session,
    site: Site,
    bucket: str,
    start: datetime,
    end: datetime,
    device: str | None = None,
    line: str | None = None,
    cls: str | None = None,
) -> list[dict[str, object]]:
    """Counts per bucket, device, line, class and direction in [start, end), ordered by time."""
    tz = site_zone(site.tz)
    table: type[RollupMinute] | type[RollupHour] | type[RollupDay]
    table = RollupMinute if bucket == "minute" else RollupHour if bucket == "hour" else RollupDay
    if table is RollupDay:
        lo: object = start.astimezone(tz).date()
        hi: object = (end - timedelta(microseconds=1)).astimezone(tz).date()
        cond = [table.bucket >= lo, table.bucket <= hi]
    else:
        cond = [table.bucket >= start.astimezone(UTC), table.bucket < end.astimezone(UTC)]
    filters = [table.site_id == site.id, *cond]
    if device:
        filters.append(table.device_id == device)
    if line:
        filters.append(table.line == line)
    if cls:
        filters.append(table.cls == cls)
    # Rollup rows are unique per (site, bucket, device, line, class, direction) and the primary key is in
    # that order: no GROUP BY, no sort. Buckets come back raw and are converted once per distinct value.
    stmt = (
        select(type_coerce(table.bucket, String), table.device_id, table.line, table.cls, table.direction, table.count)
        .where(*filters)
        .order_by(table.bucket, table.device_id, table.line, table.cls, table.direction)
    )
    starts: dict[object, str] = {}

    def local_start(raw: object) -> str:
        if table is RollupDay:
            day = raw if isinstance(raw, date) else date.fromisoformat(str(raw)[:10])
            if bucket == "week":
                day = day - timedelta(days=day.weekday())
            return local_midnight(day, tz).isoformat()
        moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
        return as_utc(moment).astimezone(tz).isoformat()

    rows = [
        {
            "start": starts[b] if b in starts else starts.setdefault(b, local_start(b)),
            "device": dev,
            "line": ln,
            "class": c,
            "direction": direction,
            "count": int(n),
        }
        for b, dev, ln, c, direction, n in session.execute(stmt)
    ]
    if bucket != "week":
        return rows
    weeks: dict[tuple[str, str, str, str, str], int] = defaultdict(int)
    for r in rows:
        weeks[(str(r["start"]), str(r["device"]), str(r["line"]), str(r["class"]), str(r["direction"]))] += int(r["count"])  # type: ignore[call-overload]
    return [{"start": k[0], "device": k[1], "line": k[2], "class": k[3], "direction": k[4], "count": n} for k, n in sorted(weeks.items())]


def totals_since(session: Session, site: Site, first_day: date) -> dict[str, dict[str, int]]:
    """counts[direction][class] from ``first_day`` (local) until now."""
    stmt = (
        select(RollupDay.direction, RollupDay.cls, func.sum(RollupDay.count))
        .where(RollupDay.site_id == site.id, RollupDay.bucket >= first_day)
        .group_by(RollupDay.direction, RollupDay.cls)
    )
    out: dict[str, dict[str, int]] = {"in": {}, "out": {}}
    for direction, cls, n in session.execute(stmt):
        out.setdefault(direction, {})[cls] = int(n)
    return out


def shares(counts: dict[str, int]) -> dict[str, float]:
    """Each class's share of ``counts`` (0-1, 4 decimals), in class order; empty when nothing was counted."""
    total = sum(counts.values())
    return {c: round(n / total, 4) for c, n in sorted(counts.items())} if total else {}


def period(session: Session, site: Site, first_day: date) -> PeriodTotals:
    counts = totals_since(session, site, first_day)
    total_in = sum(counts["in"].values())
    start = local_midnight(first_day, site_zone(site.tz)).isoformat()
    return PeriodTotals(start=start, counts=counts, total_in=total_in, shares=shares(counts["in"]))


def today_and_week(site: Site, now: datetime | None = None) -> tuple[date, date]:
    today = (now or datetime.now(UTC)).astimezone(site_zone(site.tz)).date()
    return today, today - timedelta(days=today.weekday())


def device_health(session: Session, site: Site, offline_after_s: float, now: datetime | None = None) -> list[DeviceHealth]:
    now = now or datetime.now(UTC)
    out = []
    for d in session.execute(select(Device).where(Device.site_id == site.id).order_by(Device.id)).scalars():
        seen = as_utc(d.last_seen) if d.last_seen else None
        online = seen is not None and (now - seen).total_seconds() <= offline_after_s
        out.append(DeviceHealth(id=d.id, online=online, last_seen=seen, heartbeat=json.loads(d.heartbeat) if d.heartbeat else None))
    return out


COMPOSITION_BUCKETS = {"15min": "minute", "hour": "hour", "day": "day"}  # composition bucket: the rollup it sums


def composition(
    session: Session,
    site: Site,
    bucket: str,
    start: datetime,
    end: datetime,
    direction: str = "in",
    device: str | None = None,
    line: str | None = None,
) -> tuple[list[str], list[dict[str, object]]]:
    """Class shares per ``bucket`` (15min, hour or day, in the site's time zone) in [start, end), from the
    rollups: (classes in name order, [{start, total, counts{class: n}, shares{class: 0-1}}] in time order).
    15-minute buckets are the minute rollups summed per local quarter hour."""
    rollup = COMPOSITION_BUCKETS[bucket]
    tz = site_zone(site.tz)
    per_bucket: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    quarter: dict[str, str] = {}
    for row in series(session, site, rollup, start, end, device, line):
        if row["direction"] != direction and direction != "both":
            continue
        key = str(row["start"])
        if rollup == "minute":
            if key not in quarter:
                moment = datetime.fromisoformat(key).astimezone(tz)
                quarter[key] = moment.replace(minute=moment.minute - moment.minute % 15).isoformat()
            key = quarter[key]
        per_bucket[key][str(row["class"])] += int(row["count"])  # type: ignore[call-overload]
    classes = sorted({c for counts in per_bucket.values() for c in counts})
    out: list[dict[str, object]] = []
    for key in sorted(per_bucket, key=datetime.fromisoformat):
        counts = per_bucket[key]
        total = sum(counts.values())
        out.append(
            {
                "start": key,
                "total": total,
                "counts": {c: counts[c] for c in classes if counts.get(c)},
                "shares": {c: round(counts[c] / total, 4) for c in classes if counts.get(c)} if total else {},
            }
        )
    return classes, out


def label_with_counts(session: Session, site: Site, label: TimeLabel) -> dict[str, object]:
    """A time label with the items counted `in` during it (on its line or the whole site), from the minute rollups."""
    start, end = as_utc(label.start), as_utc(label.end)
    counts: dict[str, int] = defaultdict(int)
    for row in series(session, site, "minute", start.replace(second=0, microsecond=0), end, None, label.line):
        if row["direction"] == "in":
            counts[str(row["class"])] += int(row["count"])  # type: ignore[call-overload]
    total = sum(counts.values())
    return {
        "id": label.id,
        "line": label.line,
        "start": start.astimezone(site_zone(site.tz)).isoformat(),
        "end": end.astimezone(site_zone(site.tz)).isoformat(),
        "text": label.text,
        "created_by": label.created_by,
        "total": total,
        "counts": dict(sorted(counts.items())),
        "shares": shares(counts),
    }


def labels_in(
    session: Session, site: Site, start: datetime | None, end: datetime | None, line: str | None = None
) -> list[dict[str, object]]:
    """The site's labelled periods overlapping [start, end) (either bound may be open; with ``line``, that
    line's and the site-wide ones), oldest first, at most 1000, each with what was counted in it."""
    stmt = select(TimeLabel).where(TimeLabel.site_id == site.id)
    if start is not None:
        stmt = stmt.where(TimeLabel.end > start)
    if end is not None:
        stmt = stmt.where(TimeLabel.start < end)
    if line is not None:
        stmt = stmt.where((TimeLabel.line == line) | TimeLabel.line.is_(None))
    found = session.execute(stmt.order_by(TimeLabel.start, TimeLabel.id).limit(1000)).scalars()
    return [label_with_counts(session, site, label) for label in found]
