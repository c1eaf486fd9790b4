"""``/api/v1/targets`` and ``/api/v1/alerts``: purity targets per line (set by admins) and the alerts that
targets and devices raise (read by every role that reads the site)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from server import targets
from server.deps import PrincipalDep, RowId, SessionDep, SettingsDep, admin_delete, admin_write, readable_site
from server.formats import csv_response, wants_csv
from server.models import LineTarget
from server.schemas import ID, AlertOut

router = APIRouter(prefix="/api/v1")


class TargetIn(BaseModel):
    """A purity target: on ``line``, ``class`` makes at least (min) or at most (max) ``share`` of the items."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {"site": "berkane-c1", "line": "pet", "class": "plastic", "kind": "min", "share": 0.9, "window_min": 15, "min_items": 20}
            ]
        },
    )
    site: str = Field(pattern=ID)
    line: str = Field(pattern=ID)
    cls: str = Field(alias="class", pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    kind: Literal["min", "max"]
    share: float = Field(ge=0, le=1, description="0-1: 0.9 is 90 %")
    window_min: int = Field(default=15, ge=1, le=1440, description="rolling window, minutes")
    min_items: int = Field(default=20, ge=1, le=1_000_000, description="items the window must hold before it is judged")


class TargetState(BaseModel):
    id: int
    line: str
    cls: str = Field(alias="class", serialization_alias="class")
    kind: Literal["min", "max"]
    share: float
    window_min: int
    min_items: int
    summary: str
    items: int = Field(description="items counted `in` on the line in the window ending now")
    measured: float | None = Field(description="the class's share of them; null below min_items")
    alert_id: int | None
    state: Literal["ok", "breach", "not_judged"]


class TargetsOut(BaseModel):
    site: str
    targets: list[TargetState]


class AlertsOut(BaseModel):
    site: str
    alerts: list[AlertOut]


@router.get("/targets", response_model=TargetsOut, summary="A site's purity targets, each judged on its window ending now")
def get_targets(principal: PrincipalDep, session: SessionDep, site: Annotated[str | None, Query()] = None) -> TargetsOut:
    row = readable_site(session, principal, site)
    return TargetsOut.model_validate({"site": row.id, "targets": targets.target_states(session, row.id)})


@router.post(
    "/targets",
    response_model=TargetState,
    summary="Create or replace a purity target (admin)",
    responses={403: {"description": "not an admin of this site"}},
)
def post_target(body: TargetIn, principal: PrincipalDep, session: SessionDep) -> TargetState:
    def write(s: Session) -> LineTarget:
        return targets.set_target(s, body.site, body.line, body.cls, body.kind, body.share, body.window_min, body.min_items)

    row = admin_write(session, principal, body.site, "set targets", write)
    return TargetState.model_validate(next(t for t in targets.target_states(session, body.site) if t["id"] == row.id))


@router.delete("/targets/{target_id}", status_code=204, summary="Remove a purity target and close its alert (admin)")
def delete_target(target_id: RowId, principal: PrincipalDep, session: SessionDep, site: Annotated[str | None, Query()] = None) -> Response:
    return admin_delete(session, principal, site, "set targets", lambda s, site_id: targets.delete_target(s, site_id, target_id))


@router.get(
    "/alerts",
    response_model=AlertsOut,
    summary="Alerts of a site, newest first: purity breaches, devices offline, outboxes growing",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv or Accept: text/csv"}},
)
def get_alerts(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    site: Annotated[str | None, Query()] = None,
    from_: Annotated[AwareDatetime | None, Query(alias="from", description="alerts open at or after this time")] = None,
    to: Annotated[AwareDatetime | None, Query(description="alerts started before this time")] = None,
    open: Annotated[bool, Query(description="only the open ones")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> AlertsOut | Response:
    row = readable_site(session, principal, site)
    if from_ is not None and to is not None and from_ >= to:
        raise HTTPException(422, "`from` must be before `to`")
    targets.evaluate_devices(session, row.id, settings.offline_after_s, settings.outbox_alert_depth, datetime.now(UTC))
    session.commit()
    alerts = targets.alert_rows(session, row.id, from_, to, open, limit)
    if wants_csv(request, format):
        columns = ["id", "kind", "line", "device", "summary", "value", "items", "started", "ended", "open"]
        return csv_response(alerts, columns)
    return AlertsOut.model_validate({"site": row.id, "alerts": alerts})
