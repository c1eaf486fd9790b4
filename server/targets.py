"""Purity targets per line and the alerts they (and devices) raise: judged from the minute rollups as counts
arrive, never from raw events.

A target says that on a line a class makes at least (``min``) or at most (``max``) a share of the items counted
``in`` over a rolling window of minutes that ends at the newest count, once the window holds ``min_items``. A
breach opens one alert (start, line, target, measured share, items); the first judged window back within
target closes it. Devices raise alerts too: offline (silent longer than ``offline_after_s``) and a growing
outbox (a heartbeat's ``outbox_depth`` over ``outbox_alert_depth``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import Executable, and_, bindparam, case, func, select
from sqlalchemy.orm import Session

from server import webhooks
from server.aggregates import as_utc
from server.auth import AdminError
from server.db import upsert_insert
from server.models import Alert, Device, LineTarget, RollupMinute, Site

KINDS = ("min", "max")


def describe(target: LineTarget) -> str:
    """``plastic ≥ 90 % over 15 min`` (what the dashboard and the alerts show)."""
    sign = "≥" if target.kind == "min" else "≤"
    return f"{target.cls} {sign} {target.share * 100:g} % over {target.window_min} min"


def set_target(
    session: Session, site_id: str, line: str, cls: str, kind: str, share: float, window_min: int = 15, min_items: int = 20
) -> LineTarget:
    """Create or replace the ``kind`` target of ``cls`` on a line."""
    if session.get(Site, site_id) is None:
        raise AdminError(f"unknown site {site_id!r}: create it first with `farz server admin create-site`")
    if kind not in KINDS:
        raise AdminError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not 0.0 <= share <= 1.0:
        raise AdminError(f"share {share:g} is not between 0 and 1 (90 % is 0.9)")
    if not 1 <= window_min <= 24 * 60:
        raise AdminError(f"window {window_min} min is not between 1 and 1440")
    if min_items < 1:
        raise AdminError("min_items must be at least 1")
    row = session.execute(
        select(LineTarget).where(LineTarget.site_id == site_id, LineTarget.line == line, LineTarget.cls == cls, LineTarget.kind == kind)
    ).scalar_one_or_none()
    if row is None:
        row = LineTarget(site_id=site_id, line=line, cls=cls, kind=kind, created=datetime.now(UTC))
        session.add(row)
    row.share, row.window_min, row.min_items = share, window_min, min_items
    session.flush()
    return row


def delete_target(session: Session, site_id: str, target_id: int) -> None:
    """Remove a target and close its open alert."""
    row = session.get(LineTarget, target_id)
    if row is None or row.site_id != site_id:
        raise AdminError(f"no target {target_id} on site {site_id!r}")
    _close(session, site_id, f"purity:{target_id}", datetime.now(UTC), None, None)
    session.delete(row)


@dataclass(frozen=True)
class Judgement:
    """A target judged on one window: the class's share of ``items`` (None below ``min_items``)."""

    items: int
    measured: float | None
    breached: bool


def window_counts(session: Session, site_id: str, line: str, end: datetime, window_min: int) -> dict[str, int]:
    """Items counted ``in`` per class on a line in the ``window_min`` minutes up to and including ``end``'s minute."""
    return window_sums(session, site_id, [(line, as_utc(end).replace(second=0, microsecond=0), window_min)])[0]


def judge(target: LineTarget, counts: dict[str, int]) -> Judgement:
    items = sum(counts.values())
    if items < target.min_items:
        return Judgement(items, None, False)
    measured = counts.get(target.cls, 0) / items
    breached = measured < target.share if target.kind == "min" else measured > target.share
    return Judgement(items, measured, breached)


def open_keys(session: Session, site_id: str) -> set[str]:
    """What is breached on a site now (the ``open_key`` of each open alert): one indexed query, usually empty."""
    keys = session.execute(select(Alert.open_key).where(Alert.site_id == site_id, Alert.open_key.is_not(None))).scalars()
    return {k for k in keys if k is not None}


def _open(session: Session, site_id: str, key: str, values: dict[str, object], open_now: set[str]) -> None:
    """Open the alert ``key`` unless it is open already (safe with several server workers)."""
    if key in open_now:
        return
    stmt = (
        upsert_insert(session, Alert.__table__)
        .values(site_id=site_id, open_key=key, **values)
        .on_conflict_do_nothing(index_elements=["site_id", "open_key"])
        .returning(Alert.__table__.c.id)
    )
    if session.execute(stmt).first() is not None:  # inserted, not already open
        _announce(session, site_id, key, "alert.opened")
    open_now.add(key)


def _announce(session: Session, site_id: str, key: str, kind: str, row: Alert | None = None) -> None:
    """Queue the alert's webhook message (when the site has a webhook) in this transaction."""
    if row is None:
        row = session.execute(select(Alert).where(Alert.site_id == site_id, Alert.open_key == key)).scalar_one_or_none()
    if row is not None:
        webhooks.enqueue(session, site_id, {"type": kind, "site": site_id, "alert": alert_dict(row)})


def _close(
    session: Session, site_id: str, key: str, at: datetime, value: float | None, items: int | None, open_now: set[str] | None = None
) -> None:
    if open_now is not None and key not in open_now:
        return
    row = session.execute(select(Alert).where(Alert.site_id == site_id, Alert.open_key == key)).scalar_one_or_none()
    if row is not None:
        row.ended, row.open_key = at, None
        if value is not None:
            row.value = value
        if items is not None:
            row.items = items
        _announce(session, site_id, key, "alert.closed", row)
    if open_now is not None:
        open_now.discard(key)


@lru_cache(maxsize=32)
def _windows_statement(windows: int) -> Executable:
    """Items `in` per class summed in ``windows`` windows (a column each; binds ``line_k``, ``after_k``, ``upto_k``)
    of a site (``site``, ``lines``, ``after``, ``upto``). Built once per number of windows: building it costs more
    than running it."""
    bucket = RollupMinute.bucket
    columns = [
        func.sum(
            case(
                (
                    and_(
                        RollupMinute.line == bindparam(f"line_{k}"),
                        bucket > bindparam(f"after_{k}", type_=bucket.type),
                        bucket <= bindparam(f"upto_{k}", type_=bucket.type),
                    ),
                    RollupMinute.count,
                ),
                else_=0,
            )
        )
        for k in range(windows)
    ]
    return (
        select(RollupMinute.cls, *columns)
        .where(
            RollupMinute.site_id == bindparam("site"),
            bucket > bindparam("after", type_=bucket.type),
            bucket <= bindparam("upto", type_=bucket.type),
            RollupMinute.line.in_(bindparam("lines", expanding=True)),
            RollupMinute.direction == "in",
        )
        .group_by(RollupMinute.cls)
    )


def window_sums(session: Session, site_id: str, windows: list[tuple[str, datetime, int]]) -> list[dict[str, int]]:
    """Items counted `in` per class in each window ``(line, last minute, minutes)`` of a site, from the minute
    rollups: one query that sums every window in the database (a column each), one row per class."""
    params: dict[str, object] = {"site": site_id, "lines": sorted({line for line, _, _ in windows})}
    for k, (line, end, minutes) in enumerate(windows):
        params.update({f"line_{k}": line, f"after_{k}": end - timedelta(minutes=minutes), f"upto_{k}": end})
    params["after"] = min(end - timedelta(minutes=m) for _, end, m in windows)
    params["upto"] = max(end for _, end, _ in windows)
    out: list[dict[str, int]] = [{} for _ in windows]
    for cls, *sums in session.execute(_windows_statement(len(windows)), params):
        for k, n in enumerate(sums):
            if n:
                out[k][cls] = int(n)
    return out


def evaluate_lines(session: Session, site_id: str, newest: dict[str, datetime], open_now: set[str]) -> None:
    """Judge the targets of each line that just got counts (``newest``: line → its newest count's time), in
    the ingest's own transaction (after the rollups are bumped). One query for the targets and, when there
    are any, one that sums all their windows."""
    if not newest:
        return
    targets = session.execute(select(LineTarget).where(LineTarget.site_id == site_id, LineTarget.line.in_(list(newest)))).scalars().all()
    if not targets:
        return
    ends = {line: as_utc(t).replace(second=0, microsecond=0) for line, t in newest.items()}
    keys = sorted({(t.line, t.window_min) for t in targets})  # one window per line and length
    sums = dict(zip(keys, window_sums(session, site_id, [(line, ends[line], m) for line, m in keys]), strict=True))
    for target in targets:
        counts = sums[(target.line, target.window_min)]
        verdict = judge(target, counts)
        if verdict.measured is None:
            continue
        alert_key = f"purity:{target.id}"
        if verdict.breached and alert_key in open_now:
            continue  # already open
        if verdict.breached:
            values = {
                "kind": "purity",
                "line": target.line,
                "target_id": target.id,
                "summary": describe(target),
                "value": round(verdict.measured, 4),
                "items": verdict.items,
                "started": newest[target.line],
            }
            _open(session, site_id, alert_key, values, open_now)
        else:
            _close(session, site_id, alert_key, newest[target.line], round(verdict.measured, 4), verdict.items, open_now)


def evaluate_devices(session: Session, site_id: str, offline_after_s: float, outbox_alert_depth: int, now: datetime | None = None) -> None:
    """Open or close each device's offline and outbox alerts (on reads of alerts and on the live stream's ticks)."""
    now = now or datetime.now(UTC)
    open_now = open_keys(session, site_id)
    for device in session.execute(select(Device).where(Device.site_id == site_id)).scalars():
        judge_device(session, device, offline_after_s, outbox_alert_depth, now, open_now)


def judge_device(
    session: Session, device: Device, offline_after_s: float, outbox_alert_depth: int, now: datetime, open_now: set[str]
) -> None:
    """One device's offline and outbox alerts, from its last contact and its last heartbeat."""
    seen = as_utc(device.last_seen) if device.last_seen else None
    key = f"device_offline:{device.id}"
    if seen is not None and (now - seen).total_seconds() > offline_after_s:
        values = {
            "kind": "device_offline",
            "device_id": device.id,
            "summary": f"{device.id} offline (silent more than {offline_after_s:g} s)",
            "value": round((now - seen).total_seconds(), 1),
            "items": 0,
            "started": seen + timedelta(seconds=offline_after_s),
        }
        _open(session, device.site_id, key, values, open_now)
    elif seen is not None:
        _close(session, device.site_id, key, seen, None, None, open_now)
    depth = (json.loads(device.heartbeat) if device.heartbeat else {}).get("outbox_depth")
    key = f"outbox:{device.id}"
    if isinstance(depth, int) and depth > outbox_alert_depth:
        values = {
            "kind": "outbox",
            "device_id": device.id,
            "summary": f"{device.id}: {depth} counts wait in its outbox (alert above {outbox_alert_depth})",
            "value": float(depth),
            "items": 0,
            "started": seen or now,
        }
        _open(session, device.site_id, key, values, open_now)
    elif isinstance(depth, int):
        _close(session, device.site_id, key, seen or now, float(depth), None, open_now)


def targets_of(session: Session, site_id: str) -> list[LineTarget]:
    """A site's targets, by line."""
    return list(session.execute(select(LineTarget).where(LineTarget.site_id == site_id).order_by(LineTarget.line, LineTarget.id)).scalars())


def target_states(session: Session, site_id: str, now: datetime | None = None) -> list[dict[str, object]]:
    """Each target with its window judged at ``now`` and its open alert (the dashboard's line colours)."""
    now = now or datetime.now(UTC)
    open_alerts = {
        a.target_id: a.id
        for a in session.execute(select(Alert).where(Alert.site_id == site_id, Alert.kind == "purity", Alert.ended.is_(None))).scalars()
    }
    out = []
    for t in targets_of(session, site_id):
        verdict = judge(t, window_counts(session, site_id, t.line, now, t.window_min))
        out.append(
            {
                "id": t.id,
                "line": t.line,
                "class": t.cls,
                "kind": t.kind,
                "share": t.share,
                "window_min": t.window_min,
                "min_items": t.min_items,
                "summary": describe(t),
                "items": verdict.items,
                "measured": None if verdict.measured is None else round(verdict.measured, 4),
                "alert_id": open_alerts.get(t.id),
                "state": "breach" if t.id in open_alerts else ("ok" if verdict.measured is not None else "not_judged"),
            }
        )
    return out


def alert_rows(
    session: Session, site_id: str, start: datetime | None = None, end: datetime | None = None, open_only: bool = False, limit: int = 1000
) -> list[dict[str, object]]:
    """Alerts of a site, newest first: those open in [start, end) (an alert counts if it overlaps the period)."""
    stmt = select(Alert).where(Alert.site_id == site_id)
    if open_only:
        stmt = stmt.where(Alert.ended.is_(None))
    if end is not None:
        stmt = stmt.where(Alert.started < end)
    if start is not None:
        stmt = stmt.where((Alert.ended.is_(None)) | (Alert.ended >= start))
    rows = session.execute(stmt.order_by(Alert.started.desc(), Alert.id.desc()).limit(limit)).scalars()
    return [alert_dict(a) for a in rows]


def alert_dict(a: Alert) -> dict[str, object]:
    """An alert as the API, the reports and the webhook show it."""
    return {
        "id": a.id,
        "kind": a.kind,
        "line": a.line,
        "device": a.device_id,
        "target_id": a.target_id,
        "summary": a.summary,
        "value": a.value,
        "items": a.items,
        "started": as_utc(a.started).isoformat(),
        "ended": as_utc(a.ended).isoformat() if a.ended else None,
        "open": a.ended is None,
    }


def alerts_marker(session: Session, site_id: str) -> tuple[int, int]:
    """(alerts, closed alerts) of a site: changes whenever one opens or closes."""
    total, closed = session.execute(select(func.count(Alert.id), func.count(Alert.ended)).where(Alert.site_id == site_id)).one()
    return int(total), int(closed)
