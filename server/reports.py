"""The shift report: what one shift of a site sorted, read from the minute rollups, the targets, the alerts,
the device minutes and the time labels. The API (JSON, CSV), the printable page and the PDF all show this one
``ShiftReport``, so their numbers are the same. Times are ISO 8601 in the site's time zone."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import targets
from server.aggregates import as_utc, labels_in, series, shares
from server.availability import availability
from server.models import Device, Shift, Site
from server.schemas import AlertOut, LabelOut
from server.shifts import period_of
from server.zones import site_zone

CSV_COLUMNS = ["section", "line", "device", "start", "end", "class", "direction", "count", "share", "value", "note"]
PerDirection = dict[str, dict[str, int]]  # direction → class → items


class Counted(BaseModel):
    counts: PerDirection = Field(description="items per direction (in, out) and class")
    total_in: int
    total_out: int
    shares: dict[str, float] = Field(description="each class's share of the items counted `in` (0-1)")

    @staticmethod
    def of(counts: PerDirection) -> dict[str, object]:
        ins, outs = counts.get("in", {}), counts.get("out", {})
        total_in = sum(ins.values())
        return {
            "counts": {"in": dict(sorted(ins.items())), "out": dict(sorted(outs.items()))},
            "total_in": total_in,
            "total_out": sum(outs.values()),
            "shares": shares(ins),
        }


class LineCounted(Counted):
    line: str


class HourCounted(BaseModel):
    start: str = Field(description="the local hour (the first one may start mid-hour with the shift)")
    counts: dict[str, int] = Field(description="items counted `in` per class")
    total: int


class PurityResult(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    target_id: int
    line: str
    cls: str = Field(alias="class", serialization_alias="class")
    kind: Literal["min", "max"]
    share: float
    summary: str
    items: int = Field(description="items counted `in` on the line during the shift")
    measured: float | None = Field(description="the class's share of them over the whole shift; null below the target's min_items")
    met: bool | None
    alerts: int = Field(description="alerts of this target open during the shift")
    breach_minutes: float = Field(description="minutes of the shift this target was in breach")


class Gap(BaseModel):
    start: str
    end: str


class DeviceAvailability(BaseModel):
    device: str
    availability: float | None = Field(description="share of the shift (so far) the device was reaching the server, 0-1")
    up_s: int
    down_s: int
    down: list[Gap] = Field(description="silences at least as long as the server's offline limit")
    models: list[str] = Field(description="the detector (+classifier) the device named during the shift")


class ShiftInfo(BaseModel):
    name: str
    date: str = Field(description="the local day the shift starts on")
    start: str
    end: str
    hours: float
    in_progress: bool


class SiteInfo(BaseModel):
    id: str
    name: str
    tz: str


class ShiftReport(BaseModel):
    site: SiteInfo
    shift: ShiftInfo
    generated: str
    totals: Counted
    lines: list[LineCounted]
    hours: list[HourCounted]
    purity: list[PurityResult]
    alerts: list[AlertOut]
    devices: list[DeviceAvailability]
    models: list[str]
    labels: list[LabelOut] = Field(description="labelled periods that overlap the shift, with what was counted in each")


def _empty() -> PerDirection:
    return {"in": defaultdict(int), "out": defaultdict(int)}


def shift_report(
    session: Session, site: Site, shift: Shift, day: date, offline_after_s: float, outbox_alert_depth: int, now: datetime | None = None
) -> ShiftReport:
    """The report of ``shift`` starting on local ``day``; a shift still running is reported up to ``now``.
    The devices' offline and outbox alerts are judged first (as ``/api/v1/alerts`` does); the caller commits."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    targets.evaluate_devices(session, site.id, offline_after_s, outbox_alert_depth, now)
    tz = site_zone(site.tz)
    period = period_of(shift, day, tz)
    until = min(period.end, max(period.start, now))  # availability and breach time stop at now
    totals = _empty()
    per_line: dict[str, PerDirection] = defaultdict(_empty)
    per_hour: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    hour_of: dict[str, str] = {}
    for row in series(session, site, "minute", period.start, period.end):
        cls, direction, line, n = str(row["class"]), str(row["direction"]), str(row["line"]), int(str(row["count"]))
        totals[direction][cls] += n
        per_line[line][direction][cls] += n
        if direction == "in":
            key = str(row["start"])
            if key not in hour_of:
                hour_of[key] = max(datetime.fromisoformat(key).replace(minute=0), period.start).astimezone(tz).isoformat()
            per_hour[hour_of[key]][cls] += n
    alerts = [_local_alert(a, tz) for a in targets.alert_rows(session, site.id, period.start, period.end)]
    devices = [
        _device(session, site, device, period.start, until, offline_after_s, tz)
        for device in session.execute(select(Device).where(Device.site_id == site.id).order_by(Device.id)).scalars()
    ]
    return ShiftReport(
        site=SiteInfo(id=site.id, name=site.name, tz=site.tz),
        shift=ShiftInfo(
            name=shift.name,
            date=day.isoformat(),
            start=period.start.astimezone(tz).isoformat(),
            end=period.end.astimezone(tz).isoformat(),
            hours=round(period.seconds / 3600, 2),
            in_progress=period.start <= now < period.end,
        ),
        generated=now.astimezone(tz).isoformat(),
        totals=Counted.model_validate(Counted.of(totals)),
        lines=[LineCounted.model_validate({"line": line, **Counted.of(per_line[line])}) for line in sorted(per_line)],
        hours=[
            HourCounted(start=h, counts=dict(sorted(per_hour[h].items())), total=sum(per_hour[h].values()))
            for h in sorted(per_hour, key=datetime.fromisoformat)
        ],
        purity=_purity(session, site, per_line, alerts, period.start, until),
        alerts=alerts,
        devices=devices,
        models=sorted({m for d in devices for m in d.models}),
        labels=[LabelOut.model_validate(x) for x in labels_in(session, site, period.start, period.end)],
    )


def _local_alert(row: dict[str, object], tz: ZoneInfo) -> AlertOut:
    """An alert with its times in the site's zone, like the rest of the report."""
    local = {k: datetime.fromisoformat(str(row[k])).astimezone(tz).isoformat() if row[k] else None for k in ("started", "ended")}
    return AlertOut.model_validate({**row, **local})


def _device(
    session: Session, site: Site, device: Device, start: datetime, until: datetime, offline_after_s: float, tz: ZoneInfo
) -> DeviceAvailability:
    since = max(start, as_utc(device.created))
    if since >= until:  # registered after the shift, or the shift has not begun
        return DeviceAvailability(device=device.id, availability=None, up_s=0, down_s=0, down=[], models=[])
    a = availability(session, site.id, device.id, since, until, offline_after_s)
    return DeviceAvailability(
        device=device.id,
        availability=a.share,
        up_s=round(a.seconds - a.down_s),
        down_s=round(a.down_s),
        down=[Gap(start=s.astimezone(tz).isoformat(), end=e.astimezone(tz).isoformat()) for s, e in a.down],
        models=list(a.models),
    )


def _purity(
    session: Session, site: Site, per_line: dict[str, PerDirection], alerts: list[AlertOut], start: datetime, until: datetime
) -> list[PurityResult]:
    """Each target judged on the whole shift (its class's share of the line's items `in`), with its alerts."""
    out = []
    for t in targets.targets_of(session, site.id):
        verdict = targets.judge(t, dict(per_line[t.line]["in"]) if t.line in per_line else {})
        mine = [a for a in alerts if a.target_id == t.id]
        breach_s = 0.0
        for a in mine:
            a_end = datetime.fromisoformat(a.ended) if a.ended else until
            breach_s += max(0.0, (min(a_end, until) - max(datetime.fromisoformat(a.started), start)).total_seconds())
        out.append(
            PurityResult.model_validate(
                {
                    "target_id": t.id,
                    "line": t.line,
                    "class": t.cls,
                    "kind": t.kind,
                    "share": t.share,
                    "summary": targets.describe(t),
                    "items": verdict.items,
                    "measured": None if verdict.measured is None else round(verdict.measured, 4),
                    "met": None if verdict.measured is None else not verdict.breached,
                    "alerts": len(mine),
                    "breach_minutes": round(breach_s / 60, 1),
                }
            )
        )
    return out


def csv_rows(report: ShiftReport) -> list[dict[str, object]]:
    """The report as rows of ``CSV_COLUMNS``, one section after another (total, line, hour, purity, alert,
    device, label)."""
    shift = report.shift
    rows: list[dict[str, object]] = []
    for section, line, block in [("total", None, report.totals), *(("line", b.line, b) for b in report.lines)]:
        for direction, per_class in block.counts.items():
            for cls, n in per_class.items():
                share = block.shares.get(cls) if direction == "in" else None
                row = {"line": line, "start": shift.start, "end": shift.end, "class": cls, "direction": direction, "count": n}
                rows.append({"section": section, **row, "share": share})
    for hour in report.hours:
        rows += [{"section": "hour", "start": hour.start, "class": c, "direction": "in", "count": n} for c, n in hour.counts.items()]
    for p in report.purity:
        verdict = "not judged" if p.met is None else "met" if p.met else "missed"
        note = f"{p.summary}: {verdict}, {p.alerts} alerts, {p.breach_minutes} min in breach"
        rows.append(
            {"section": "purity", "line": p.line, "class": p.cls, "count": p.items, "share": p.share, "value": p.measured, "note": note}
        )
    for a in report.alerts:
        span = {"start": a.started, "end": a.ended}
        rows.append({"section": "alert", "line": a.line, "device": a.device, **span, "count": a.items, "value": a.value, "note": a.summary})
    for d in report.devices:
        span = {"start": shift.start, "end": shift.end}
        rows.append(
            {"section": "device", "device": d.device, **span, "count": d.down_s, "value": d.availability, "note": " ".join(d.models)}
        )
    for label in report.labels:
        span = {"start": label.start, "end": label.end}
        for cls, n in label.counts.items():
            share = label.shares[cls]
            rows.append({"section": "label", "line": label.line, **span, "class": cls, "direction": "in", "count": n, "share": share})
            rows[-1]["note"] = label.text
    return rows
