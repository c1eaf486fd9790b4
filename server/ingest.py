"""Ingest: store new events once (unique on device_id + event_id) and bump the rollups in one transaction."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, func
from sqlalchemy.orm import Session

from server import availability, targets
from server.db import upsert_insert
from server.models import Device, Event, RollupDay, RollupHour, RollupMinute, Site
from server.schemas import CountEventIn, IngestIn, IngestOut, Rejected
from server.settings import Settings
from server.zones import site_zone

RollupKey = tuple[object, str, str, str, str]  # bucket, device, line, class, direction


def bump(session: Session, table: Table, site_id: str, counts: Counter[RollupKey]) -> None:
    if not counts:
        return
    rows = [
        {"site_id": site_id, "bucket": b, "device_id": d, "line": ln, "class": c, "direction": dr, "count": n}
        for (b, d, ln, c, dr), n in counts.items()
    ]
    stmt = upsert_insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["site_id", "bucket", "device_id", "line", "class", "direction"],
        set_={"count": table.c["count"] + stmt.excluded["count"]},
    )
    session.execute(stmt, rows)


def check_time(event: CountEventIn, now: datetime, settings: Settings) -> str | None:
    """Why an event's time is refused, or None."""
    if event.ts > now + timedelta(seconds=settings.max_future_s):
        return f"ts {event.ts.isoformat()} is more than {settings.max_future_s:g} s in the future (is the device clock right?)"
    if event.ts < now - timedelta(days=settings.max_past_days):
        return f"ts {event.ts.isoformat()} is more than {settings.max_past_days:g} days in the past"
    return None


def check_class(event: CountEventIn, classes: frozenset[str], settings: Settings) -> str | None:
    """Why an event's class is refused (not in the taxonomy the server serves), or None."""
    if event.cls in classes:
        return None
    names = ", ".join(settings.classes)
    return f"class {event.cls!r} is not a class of the taxonomy ({names}); is the device's model from another taxonomy?"


def ingest(session: Session, device: Device, site: Site, body: IngestIn, settings: Settings, now: datetime | None = None) -> IngestOut:
    """Store the batch; returns accepted / duplicate counts and the refused events with reasons."""
    now = now or datetime.now(UTC)
    tz = site_zone(site.tz)
    rejected: list[Rejected] = []
    rows = []
    seen: set[str] = set()
    repeated = 0
    classes = frozenset(settings.classes)
    for e in body.events:
        if e.device_id != device.id:
            rejected.append(Rejected(event_id=e.event_id, reason=f"event names device {e.device_id!r}, the batch is from {device.id!r}"))
            continue
        reason = check_time(e, now, settings) or check_class(e, classes, settings)
        if reason:
            rejected.append(Rejected(event_id=e.event_id, reason=reason))
            continue
        if e.event_id in seen:
            repeated += 1
            continue
        seen.add(e.event_id)
        rows.append(
            {
                "device_id": device.id,
                "event_id": e.event_id,
                "site_id": site.id,
                "ts": e.ts.astimezone(UTC),
                "line": e.line,
                "class": e.cls,
                "direction": e.direction,
                "track_id": e.track_id,
                "confidence": e.confidence,
                "model": e.model,
            }
        )
    inserted: list[dict[str, object]] = []
    if rows:
        table = Event.__table__
        stmt = upsert_insert(session, table).on_conflict_do_nothing(index_elements=["device_id", "event_id"])
        returning = stmt.returning(table.c.event_id)
        new_ids = {r[0] for r in session.execute(returning, rows)}
        inserted = [r for r in rows if r["event_id"] in new_ids]
    minute: Counter[RollupKey] = Counter()
    hour: Counter[RollupKey] = Counter()
    day: Counter[RollupKey] = Counter()
    for r in inserted:
        ts = r["ts"]
        assert isinstance(ts, datetime)
        key = (str(r["device_id"]), str(r["line"]), str(r["class"]), str(r["direction"]))
        minute[(ts.replace(second=0, microsecond=0), *key)] += 1
        hour[(ts.replace(minute=0, second=0, microsecond=0), *key)] += 1
        day[(ts.astimezone(tz).date(), *key)] += 1
    bump(session, RollupMinute.__table__, site.id, minute)  # type: ignore[arg-type]
    bump(session, RollupHour.__table__, site.id, hour)  # type: ignore[arg-type]
    bump(session, RollupDay.__table__, site.id, day)  # type: ignore[arg-type]
    newest: dict[str, datetime] = {}
    for r in inserted:
        if r["direction"] == "in":
            line, ts = str(r["line"]), r["ts"]
            assert isinstance(ts, datetime)
            newest[line] = max(ts, newest.get(line, ts))
    open_now = targets.open_keys(session, site.id)
    targets.evaluate_lines(session, site.id, newest, open_now)
    beat = body.heartbeat
    if beat is not None:
        device.heartbeat = json.dumps({**beat.model_dump(exclude_none=True), "received": now.isoformat()})
    if beat is not None or inserted:  # the device reached us: seen now, with the models it named
        device.last_seen = now
        models = (beat.model if beat is not None else None) or (str(inserted[-1]["model"]) if inserted else "")
        availability.record_contact(session, site.id, device.id, now, models)
        targets.judge_device(session, device, settings.offline_after_s, settings.outbox_alert_depth, now, open_now)
    session.commit()
    return IngestOut(accepted=len(inserted), duplicates=len(rows) - len(inserted) + repeated, rejected=rejected)


def latest_event_id(session: Session, site_id: str) -> int:
    """The highest event row id of a site (0 when none): the live stream's change marker."""
    return int(session.query(func.coalesce(func.max(Event.id), 0)).filter(Event.site_id == site_id).scalar() or 0)
