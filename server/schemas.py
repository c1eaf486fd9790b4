"""Request and response bodies of the HTTP API (pydantic), with examples for the OpenAPI docs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
CLASS_NAME = r"^[a-z][a-z0-9_-]{0,63}$"  # a material class, as counts and the taxonomy name it


class CountEventIn(BaseModel):
    """One counted item, as the device made it (DESIGN.md §3)."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "event_id": "019ab1c2-7d3e-7a10-9b2c-3d4e5f607182",
                    "ts": "2026-11-24T10:15:02.431Z",
                    "device_id": "berkane-c1-cam2",
                    "line": "belt-1",
                    "class": "plastic",
                    "direction": "in",
                    "track_id": 1832,
                    "confidence": 0.87,
                    "model": "farz-waste-n@sha256:0123abcd",
                }
            ]
        },
    )
    event_id: str = Field(pattern=ID)
    ts: AwareDatetime
    device_id: str = Field(pattern=ID)
    line: str = Field(pattern=ID)
    cls: str = Field(alias="class", pattern=CLASS_NAME)
    direction: Literal["in", "out"]
    track_id: int = Field(ge=0, le=2**62)
    confidence: float = Field(ge=0, le=1)
    model: str = Field(max_length=200)


class HeartbeatIn(BaseModel):
    """Device health; unknown keys are kept as sent (bounded by the body size)."""

    model_config = ConfigDict(extra="allow")
    fps: float | None = Field(default=None, ge=0, le=10_000)
    inference_ms: float | None = Field(default=None, ge=0)
    dropped_frames: int | None = Field(default=None, ge=0)
    outbox_depth: int | None = Field(default=None, ge=0)
    model: str | None = Field(default=None, max_length=200)
    uptime_s: float | None = Field(default=None, ge=0)
    temperature_c: float | None = None


class IngestIn(BaseModel):
    """A batch from one device: events and, optionally, a heartbeat."""

    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(pattern=ID)
    events: list[CountEventIn] = Field(default_factory=list)
    heartbeat: HeartbeatIn | None = None


class Rejected(BaseModel):
    event_id: str
    reason: str


class IngestOut(BaseModel):
    """How many events were new, how many were already stored, and which were refused (with why)."""

    accepted: int
    duplicates: int
    rejected: list[Rejected] = Field(default_factory=list)


class SeriesPoint(BaseModel):
    start: str = Field(description="bucket start, ISO-8601 in the site's time zone")
    device: str
    line: str
    cls: str = Field(alias="class", serialization_alias="class")
    direction: Literal["in", "out"]
    count: int


class CountsOut(BaseModel):
    site: str
    bucket: Literal["minute", "hour", "day", "week"]
    from_: datetime = Field(serialization_alias="from", alias="from")
    to: datetime
    series: list[SeriesPoint]
    next_offset: int | None = Field(default=None, description="pass as `offset` for the next page; null on the last page")


class LabelOut(BaseModel):
    id: int
    line: str | None
    start: str
    end: str
    text: str
    created_by: str
    total: int = Field(description="items counted `in` in the period (on the line, or on the whole site)")
    counts: dict[str, int]
    shares: dict[str, float]


class CompositionPoint(BaseModel):
    start: str = Field(description="bucket start, ISO-8601 in the site's time zone")
    total: int = Field(description="items counted in the bucket (in the chosen direction)")
    counts: dict[str, int] = Field(description="items per class")
    shares: dict[str, float] = Field(description="each class's share of `total`, 0-1")


class CompositionOut(BaseModel):
    """Shares per class over time, read from the rollups."""

    site: str
    bucket: Literal["15min", "hour", "day"]
    from_: datetime = Field(serialization_alias="from", alias="from")
    to: datetime
    direction: Literal["in", "out", "both"]
    device: str | None
    line: str | None
    classes: list[str]
    series: list[CompositionPoint]
    labels: list[LabelOut] = Field(
        default_factory=list,
        description="labelled periods that overlap the range (on this line, or site-wide), each with its own counts and "
        "shares of the items counted `in`, to compare side by side",
    )
    adjusted: dict[str, object] | None = Field(
        default=None,
        description="with adjusted=true: the period's shares estimated through the site's reviewed confusion matrix "
        "(adjusted classify-and-count) with 90 % intervals, and whether enough items were counted and reviewed to trust it",
    )


class SiteOut(BaseModel):
    id: str
    name: str
    tz: str
    utc_offsets: list[tuple[datetime, int]] = Field(
        default_factory=list,
        description="the site's UTC offset in minutes from each change of its zone's rules on, 2000 to two years ahead, "
        "oldest first (the server's IANA rules, `tz_rules`): a page shows the site's clock by these, not by its own copy",
    )
    tz_rules: str = Field(default="", description="the version of the IANA time-zone rules the server uses, e.g. 2026f")
    devices: int
    latitude: float | None = None
    longitude: float | None = None


class DeviceHealth(BaseModel):
    id: str
    online: bool
    last_seen: datetime | None
    heartbeat: dict[str, object] | None


class PeriodTotals(BaseModel):
    start: str
    counts: dict[str, dict[str, int]] = Field(description="counts[direction][class]")
    total_in: int
    shares: dict[str, float] = Field(description="share of each class among the items counted `in` (purity-style)")


class SummaryOut(BaseModel):
    site: str
    name: str
    tz: str
    today: PeriodTotals
    this_week: PeriodTotals
    devices: list[DeviceHealth]


class WhoAmIOut(BaseModel):
    """Who a token belongs to: what a device's live view asks before it lets a person in."""

    role: str
    site: str | None = Field(description="the site the token is bound to; null = every site")
    device_id: str | None = None


class AlertOut(BaseModel):
    id: int
    kind: Literal["purity", "device_offline", "outbox"]
    line: str | None
    device: str | None
    target_id: int | None
    summary: str
    value: float = Field(description="measured share (purity), seconds silent (device_offline) or counts waiting (outbox)")
    items: int
    started: str
    ended: str | None
    open: bool
