"""``/api/v1/labels``: staff name a period (``load from supplier A, 10:00-10:40``); each label comes back with
what was counted in it, so labelled periods compare side by side. Counts come from the minute rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from server.aggregates import label_with_counts, labels_in
from server.deps import PrincipalDep, SessionDep, readable_site
from server.formats import csv_response, wants_csv
from server.models import TimeLabel
from server.schemas import ID, LabelOut

router = APIRouter(prefix="/api/v1")
MAX_LABEL = timedelta(days=31)


class LabelIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "site": "berkane-c1",
                    "line": "pet",
                    "start": "2026-11-24T10:00:00+01:00",
                    "end": "2026-11-24T10:40:00+01:00",
                    "text": "load from supplier A",
                }
            ]
        },
    )
    site: str = Field(pattern=ID)
    line: str | None = Field(default=None, pattern=ID, description="one line, or null for the whole site")
    start: AwareDatetime
    end: AwareDatetime
    text: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> LabelIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_LABEL:
            raise ValueError("a label covers at most 31 days")
        return self


class LabelsOut(BaseModel):
    site: str
    labels: list[LabelOut]


@router.post(
    "/labels",
    response_model=LabelOut,
    status_code=201,
    summary="Label a period of a site or line (viewers of the site and admins)",
    responses={403: {"description": "not a viewer or admin of this site"}},
)
def post_label(body: LabelIn, principal: PrincipalDep, session: SessionDep) -> LabelOut:
    site = readable_site(session, principal, body.site)
    if principal.role not in ("viewer", "admin"):
        raise HTTPException(403, "only the site's viewers and admins may label periods")
    label = TimeLabel(
        site_id=site.id,
        line=body.line,
        start=body.start.astimezone(UTC),
        end=body.end.astimezone(UTC),
        text=body.text,
        created=datetime.now(UTC),
        created_by=principal.role,
    )
    session.add(label)
    session.commit()
    return LabelOut.model_validate(label_with_counts(session, site, label))


@router.get(
    "/labels",
    response_model=LabelsOut,
    summary="Labelled periods with what was counted in each, side by side",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV (a row per label and class) with format=csv"}},
)
def get_labels(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    site: Annotated[str | None, Query()] = None,
    from_: Annotated[AwareDatetime | None, Query(alias="from", description="labels ending after this time")] = None,
    to: Annotated[AwareDatetime | None, Query(description="labels starting before this time")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> LabelsOut | Response:
    row = readable_site(session, principal, site)
    labels = [LabelOut.model_validate(x) for x in labels_in(session, row, from_, to)]
    if wants_csv(request, format):
        rows: list[dict[str, object]] = [
            {
                "label": x.text,
                "line": x.line,
                "start": x.start,
                "end": x.end,
                "class": c,
                "count": n,
                "total": x.total,
                "share": x.shares[c],
            }
            for x in labels
            for c, n in x.counts.items()
        ]
        return csv_response(rows, ["label", "line", "start", "end", "class", "count", "total", "share"])
    return LabelsOut(site=row.id, labels=labels)
