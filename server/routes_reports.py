"""Shifts (set by admins), the shift report (JSON, CSV, PDF and a printable page) and a site's alert webhook."""

from __future__ import annotations

from datetime import date
from pathlib import Path as FsPath
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from server import shifts, webhooks
from server.auth import AdminError
from server.deps import PrincipalDep, RowId, SessionDep, SettingsDep, admin_delete, admin_write, readable_site, require_admin
from server.formats import csv_response, wants_csv
from server.models import Shift, Webhook
from server.reports import CSV_COLUMNS, ShiftReport, csv_rows, shift_report
from server.schemas import ID

router = APIRouter()
REPORT_PAGE = FsPath(__file__).resolve().parent / "static" / "report.html"
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class ShiftIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"site": "berkane-c1", "name": "night", "start": "22:00", "end": "06:00"}]}
    )
    site: str = Field(pattern=ID)
    name: str = Field(pattern=shifts.NAME.pattern)
    start: str = Field(pattern=HHMM, description="local time of day, HH:MM")
    end: str = Field(pattern=HHMM, description="local time of day; at or before start: the next day")


class ShiftOut(BaseModel):
    id: int
    name: str
    start: str
    end: str


class ShiftsOut(BaseModel):
    site: str
    tz: str
    shifts: list[ShiftOut]


def _shift_out(row: Shift) -> ShiftOut:
    return ShiftOut(id=row.id, name=row.name, start=row.start, end=row.end)


@router.get("/api/v1/shifts", response_model=ShiftsOut, summary="A site's shifts, in its own time zone")
def get_shifts(principal: PrincipalDep, session: SessionDep, site: Annotated[str | None, Query()] = None) -> ShiftsOut:
    row = readable_site(session, principal, site)
    return ShiftsOut(site=row.id, tz=row.tz, shifts=[_shift_out(s) for s in shifts.shifts_of(session, row.id)])


@router.post(
    "/api/v1/shifts",
    response_model=ShiftOut,
    summary="Create or replace a shift (admin)",
    responses={403: {"description": "not an admin of this site"}},
)
def post_shift(body: ShiftIn, principal: PrincipalDep, session: SessionDep) -> ShiftOut:
    row = admin_write(
        session, principal, body.site, "set shifts", lambda s: shifts.set_shift(s, body.site, body.name, body.start, body.end)
    )
    return _shift_out(row)


@router.delete("/api/v1/shifts/{shift_id}", status_code=204, summary="Remove a shift (admin)")
def delete_shift(shift_id: RowId, principal: PrincipalDep, session: SessionDep, site: Annotated[str | None, Query()] = None) -> Response:
    return admin_delete(session, principal, site, "set shifts", lambda s, site_id: shifts.delete_shift(s, site_id, shift_id))


@router.get(
    "/api/v1/reports/shift",
    response_model=ShiftReport,
    summary="What a shift sorted: totals per class, line and hour, purity, alerts, device availability, models, labels",
    responses={
        200: {
            "content": {"text/csv": {}, "application/pdf": {}},
            "description": "JSON; CSV (a row per figure, by section) with format=csv; a printable PDF with format=pdf",
        },
        404: {"description": "no such shift"},
    },
)
def get_shift_report(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    date: Annotated[date, Query(description="the local day the shift starts on, YYYY-MM-DD")],
    shift: Annotated[str, Query(max_length=64, description="the shift's name")],
    site: Annotated[str | None, Query()] = None,
    format: Annotated[Literal["json", "csv", "pdf"] | None, Query()] = None,
) -> ShiftReport | Response:
    row = readable_site(session, principal, site)
    try:
        found = shifts.find_shift(session, row.id, shift)
    except AdminError as exc:
        raise HTTPException(404, str(exc)) from None
    report = shift_report(session, row, found, date, settings.offline_after_s, settings.outbox_alert_depth)
    session.commit()  # the devices' alerts it judged
    if format == "pdf":
        from server.report_pdf import render_pdf

        name = f"farz-{row.id}-{date.isoformat()}-{found.name}.pdf".replace(" ", "_")
        return Response(render_pdf(report), media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})
    if wants_csv(request, format):
        return csv_response(csv_rows(report), CSV_COLUMNS)
    return report


@router.get("/reports/shift", include_in_schema=False)
def shift_report_page() -> FileResponse:
    """The printable shift report (it reads the JSON above with the dashboard's token)."""
    return FileResponse(REPORT_PAGE, media_type="text/html")


class WebhookIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"site": "berkane-c1", "url": "https://ops.example.org/farz-alerts"}]}
    )
    site: str = Field(pattern=ID)
    url: str | None = Field(max_length=2000, description="http(s) URL that gets alerts POSTed as JSON; null removes the webhook")
    secret: str | None = Field(default=None, max_length=200, description="signs each body: X-Farz-Signature: sha256=<HMAC>")


class DeliveryOut(BaseModel):
    id: int
    type: str | None
    attempts: int
    state: Literal["pending", "delivered", "failed"]
    last_error: str | None


class WebhookOut(BaseModel):
    site: str
    url: str | None
    signed: bool
    deliveries: list[DeliveryOut] = Field(description="the last 100 messages, newest first")


def _webhook_out(session: SessionDep, site_id: str) -> WebhookOut:
    hook = session.get(Webhook, site_id)
    return WebhookOut(
        site=site_id,
        url=hook.url if hook else None,
        signed=bool(hook and hook.secret),
        deliveries=[DeliveryOut.model_validate(d) for d in webhooks.deliveries(session, site_id)],
    )


@router.get("/api/v1/webhook", response_model=WebhookOut, summary="A site's alert webhook and its last deliveries (admin)")
def get_webhook(principal: PrincipalDep, session: SessionDep, site: Annotated[str | None, Query()] = None) -> WebhookOut:
    row = readable_site(session, principal, site)
    require_admin(principal, row.id, "see its webhook")
    return _webhook_out(session, row.id)


@router.put("/api/v1/webhook", response_model=WebhookOut, summary="Set or remove a site's alert webhook (admin)")
def put_webhook(body: WebhookIn, principal: PrincipalDep, session: SessionDep) -> WebhookOut:
    admin_write(session, principal, body.site, "set its webhook", lambda s: webhooks.set_webhook(s, body.site, body.url, body.secret))
    return _webhook_out(session, body.site)
