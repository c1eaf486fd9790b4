"""``/api/v1``: ingest for devices; counts, sites and summaries for staff and the city (JSON or CSV)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import aggregates, reviews, trust, zones
from server.deps import PrincipalDep, SessionDep, SettingsDep, readable_site
from server.formats import csv_response, wants_csv
from server.ingest import ingest
from server.models import Device, Site
from server.schemas import CompositionOut, CountsOut, IngestIn, IngestOut, SiteOut, SummaryOut, WhoAmIOut

router = APIRouter(prefix="/api/v1")


@router.get(
    "/whoami",
    response_model=WhoAmIOut,
    summary="The role and site of the calling token",
    responses={401: {"description": "missing or unknown token"}},
)
def get_whoami(principal: PrincipalDep) -> WhoAmIOut:
    """Devices ask this to check a person's token before opening their live view to them."""
    return WhoAmIOut(role=principal.role, site=principal.site_id, device_id=principal.device_id)


@router.post(
    "/ingest",
    response_model=IngestOut,
    summary="Store a batch of count events (device token)",
    responses={401: {"description": "missing or unknown token"}, 403: {"description": "token of another device"}},
)
def post_ingest(body: IngestIn, request: Request, principal: PrincipalDep, session: SessionDep, settings: SettingsDep) -> IngestOut:
    """Idempotent on (device_id, event_id): a retried batch is answered with its events as duplicates."""
    if principal.role != "device" or principal.device_id != body.device_id:
        raise HTTPException(403, f"this token may not write for device {body.device_id!r}")
    if len(body.events) > settings.max_events_per_batch:
        raise HTTPException(413, f"at most {settings.max_events_per_batch} events per batch")
    device = session.get(Device, body.device_id)
    if device is None:
        raise HTTPException(403, f"device {body.device_id!r} is not registered")
    site = session.get(Site, device.site_id)
    assert site is not None
    result = ingest(session, device, site, body, settings)
    request.app.state.wal_guard.after_commit(session)
    return result


@router.get(
    "/counts",
    response_model=CountsOut,
    summary="Counts per time bucket in the site's time zone",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv or Accept: text/csv"}},
)
def get_counts(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    site: Annotated[str | None, Query(description="site id (optional when the token is bound to one site)")] = None,
    device: str | None = None,
    line: str | None = None,
    cls: Annotated[str | None, Query(alias="class")] = None,
    from_: Annotated[AwareDatetime | None, Query(alias="from", description="start, ISO-8601 with offset; default 24 h ago")] = None,
    to: Annotated[AwareDatetime | None, Query(description="end (exclusive); default now")] = None,
    bucket: Literal["minute", "hour", "day", "week"] = "hour",
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CountsOut | Response:
    row = readable_site(session, principal, site)
    end = to or datetime.now(UTC)
    start = from_ or end - timedelta(days=1)
    if start >= end:
        raise HTTPException(422, "`from` must be before `to`")
    if bucket == "minute" and end - start > timedelta(days=31):
        raise HTTPException(422, "minute buckets cover at most 31 days: use hour, day or week")
    points = aggregates.series(session, row, bucket, start, end, device, line, cls)
    size = limit or settings.page_size
    page = points[offset : offset + size]
    next_offset = offset + size if offset + size < len(points) else None
    if wants_csv(request, format):
        return csv_response(page, ["start", "device", "line", "class", "direction", "count"])
    # Built directly (not through the response model) so that large series serialise quickly; same shape.
    body = {"site": row.id, "bucket": bucket, "from": start.isoformat(), "to": end.isoformat(), "series": page, "next_offset": next_offset}
    return JSONResponse(body)


@router.get(
    "/composition",
    response_model=CompositionOut,
    summary="Shares per class over time (15 min, hour or day buckets in the site's time zone)",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv or Accept: text/csv"}},
)
def get_composition(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    site: Annotated[str | None, Query(description="site id (optional when the token is bound to one site)")] = None,
    device: str | None = None,
    line: str | None = None,
    from_: Annotated[AwareDatetime | None, Query(alias="from", description="start, ISO-8601 with offset; default local midnight")] = None,
    to: Annotated[AwareDatetime | None, Query(description="end (exclusive); default now")] = None,
    bucket: Literal["15min", "hour", "day"] = "hour",
    direction: Literal["in", "out", "both"] = "in",
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
    adjusted: Annotated[
        bool,
        Query(description="add the period's shares estimated through the site's reviewed confusion matrix, with 90 % intervals"),
    ] = False,
) -> CompositionOut | Response:
    """What the line carried: each class's share of the items counted, per bucket. Same rollups as `/counts`,
    so each bucket's counts sum to what `/counts` gives for the same period."""
    row = readable_site(session, principal, site)
    end = to or datetime.now(UTC)
    tz = zones.site_zone(row.tz)
    start = from_ or aggregates.local_midnight(end.astimezone(tz).date(), tz)
    if start >= end:
        raise HTTPException(422, "`from` must be before `to`")
    if bucket == "15min" and end - start > timedelta(days=31):
        raise HTTPException(422, "15min buckets cover at most 31 days: use hour or day")
    classes, points = aggregates.composition(session, row, bucket, start, end, direction, device, line)
    if wants_csv(request, format):
        rows = [
            {"start": p["start"], "class": c, "count": n, "total": p["total"], "share": p["shares"][c]}  # type: ignore[index]
            for p in points
            for c, n in p["counts"].items()  # type: ignore[attr-defined]
        ]
        return csv_response(rows, ["start", "class", "count", "total", "share"])
    body: dict[str, object] = {
        "site": row.id,
        "bucket": bucket,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "direction": direction,
        "device": device,
        "line": line,
        "classes": classes,
        "series": points,
        "labels": [] if device else aggregates.labels_in(session, row, start, end, line),
    }
    if adjusted:
        body["adjusted"] = adjusted_period(session, row.id, points, settings.classes)
    return JSONResponse(body)


def adjusted_period(session: Session, site_id: str, points: list[dict[str, object]], classes: tuple[str, ...]) -> dict[str, object]:
    """The whole period's shares corrected by the confusion matrix of the site's newest reviewed classifier."""
    counts: dict[str, int] = {}
    for point in points:
        for c, n in point["counts"].items():  # type: ignore[attr-defined]
            counts[c] = counts.get(c, 0) + int(n)
    classifier, figures = reviews.site_confusion(session, site_id, classes)
    estimate = trust.adjusted_composition(counts, figures.confusion, classes)
    return {"classifier": classifier, **estimate.to_json()}


@router.get("/sites", response_model=list[SiteOut], summary="Sites this token may read")
def get_sites(principal: PrincipalDep, session: SessionDep) -> list[SiteOut]:
    if principal.role == "device":
        raise HTTPException(403, "device tokens can only send events")
    stmt = select(Site, func.count(Device.id)).outerjoin(Device, Device.site_id == Site.id).group_by(Site.id).order_by(Site.id)
    return [
        SiteOut(
            id=s.id,
            name=s.name,
            tz=s.tz,
            utc_offsets=zones.utc_offsets(s.tz),
            tz_rules=zones.RULES_VERSION,
            devices=n,
            latitude=s.latitude,
            longitude=s.longitude,
        )
        for s, n in session.execute(stmt)
        if principal.may_read(s.id)
    ]


@router.get("/sites/{site_id}/summary", response_model=SummaryOut, summary="Today, this week, shares per class, device health")
def get_summary(
    site_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> SummaryOut | Response:
    site = readable_site(session, principal, site_id)
    today, week = aggregates.today_and_week(site)
    summary = SummaryOut(
        site=site.id,
        name=site.name,
        tz=site.tz,
        today=aggregates.period(session, site, today),
        this_week=aggregates.period(session, site, week),
        devices=aggregates.device_health(session, site, settings.offline_after_s),
    )
    if wants_csv(request, format):
        rows = [
            {"period": name, "direction": d, "class": c, "count": n}
            for name, p in (("today", summary.today), ("this_week", summary.this_week))
            for d, per in p.counts.items()
            for c, n in sorted(per.items())
        ]
        return csv_response(rows, ["period", "direction", "class", "count"])
    return summary
