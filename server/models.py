"""Database tables (SQLAlchemy 2). Rollups per minute and hour (UTC) and per local day keep reads off raw events."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tz: Mapped[str] = mapped_column(String(64))
    tz_rules: Mapped[str | None] = mapped_column(String(16), nullable=True)  # IANA rules its day rollups follow
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    address: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat: Mapped[str | None] = mapped_column(Text, nullable=True)  # the last heartbeat, JSON


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"), nullable=True)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)  # who holds it (a reviewer's name), shown beside their labels
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("device_id", "event_id", name="uq_events_device_event"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    line: Mapped[str] = mapped_column(String(64))
    cls: Mapped[str] = mapped_column("class", String(64))
    direction: Mapped[str] = mapped_column(String(3))
    track_id: Mapped[int] = mapped_column(BigInteger)
    confidence: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(200))


class _RollupColumns:
    """The key and count every rollup table has; ``bucket`` is set per table (key order: site, bucket, …)."""

    site_id: Mapped[str] = mapped_column(String(64), primary_key=True, sort_order=-2)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line: Mapped[str] = mapped_column(String(64), primary_key=True)
    cls: Mapped[str] = mapped_column("class", String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class RollupMinute(_RollupColumns, Base):
    """Counts per UTC minute."""

    __tablename__ = "rollup_minute"
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True, sort_order=-1)


class RollupHour(_RollupColumns, Base):
    """Counts per UTC hour."""

    __tablename__ = "rollup_hour"
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True, sort_order=-1)


class RollupDay(_RollupColumns, Base):
    """Counts per day in the site's own time zone."""

    __tablename__ = "rollup_day"
    bucket: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-1)


Index("ix_events_site_id_id", Event.site_id, Event.id)


class ModelVersion(Base):
    """A registered detector: its card (classes, input size, metrics) and where its file is kept."""

    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    card: Mapped[str] = mapped_column(Text)  # JSON: classes, imgsz, metrics, taxonomy_version, …
    path: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelAssignment(Base):
    """Which model a site or a device should run; a device's own assignment wins over its site's."""

    __tablename__ = "model_assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(8))  # "site" | "device"
    target: Mapped[str] = mapped_column(String(64), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HardSample(Base):
    """A frame a device was unsure about, with its detections as pre-labels, for the next training round."""

    __tablename__ = "hard_samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    sample_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    labels: Mapped[str] = mapped_column(Text)  # JSON list of {class, confidence, xyxy}
    image: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (UniqueConstraint("device_id", "sample_id", name="uq_samples_device_sample"),)


class LineTarget(Base):
    """A purity target on a line: ``cls`` makes at least (``kind`` min) or at most (max) ``share`` of the items
    counted ``in`` over the last ``window_min`` minutes, judged once ``min_items`` are in the window."""

    __tablename__ = "line_targets"
    __table_args__ = (UniqueConstraint("site_id", "line", "class", "kind", name="uq_targets_site_line_class_kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    line: Mapped[str] = mapped_column(String(64))
    cls: Mapped[str] = mapped_column("class", String(64))
    kind: Mapped[str] = mapped_column(String(3))  # "min" | "max"
    share: Mapped[float] = mapped_column(Float)
    window_min: Mapped[int] = mapped_column(Integer)
    min_items: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Alert(Base):
    """A breach (a purity target missed, a device offline, an outbox growing): open while ``ended`` is null.
    ``open_key`` names what is breached while it is open (null once closed), unique per site: one open alert each."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("site_id", "open_key", name="uq_alerts_site_open_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "purity" | "device_offline" | "outbox"
    line: Mapped[str | None] = mapped_column(String(64), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    summary: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)  # measured share, seconds offline, or outbox depth
    items: Mapped[int] = mapped_column(Integer)  # items in the window (purity), else 0
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    open_key: Mapped[str | None] = mapped_column(String(200), nullable=True)


class TimeLabel(Base):
    """Staff's name for a period on a site (or one line of it): ``load from supplier A, 10:00-10:40``."""

    __tablename__ = "time_labels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    line: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    text: Mapped[str] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(16))  # the role of the token that made it


class Shift(Base):
    """A named shift of a site, in the site's own time zone: ``start``–``end`` as ``HH:MM``. An end at or before
    the start means the shift runs into the next day (``22:00``–``06:00``; equal times: 24 hours)."""

    __tablename__ = "shifts"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_shifts_site_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    start: Mapped[str] = mapped_column(String(5))
    end: Mapped[str] = mapped_column(String(5))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeviceMinute(Base):
    """A UTC minute in which a device reached the server (events or a heartbeat), with the models it named:
    availability comes from the gaps between these minutes, and the models in use from ``model``."""

    __tablename__ = "device_minutes"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(200))


class Webhook(Base):
    """Where a site's alerts are POSTed as JSON (signed with HMAC-SHA256 of ``secret`` when one is set)."""

    __tablename__ = "webhooks"
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """One alert message waiting for (or done with) its POST: written in the transaction that opened or closed
    the alert, so none is lost; the sender retries with backoff until ``delivered`` or it gives up."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)  # JSON
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    delivered: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failed: Mapped[bool] = mapped_column(default=False)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReviewItem(Base):
    """A counted track a device kept for review: a random share of all counted tracks (``kind`` random: the
    fair sample the trust figures come from) and the tracks the classifier was unsure of (``unsure``).
    ``status``: open until it has ``needed`` labels, then done (``final`` = the agreed label) or, when its
    reviewers disagree, open for one more label (at most 3), contested when three all differ."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("device_id", "item_id", name="uq_review_items_device_item"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    line: Mapped[str] = mapped_column(String(64))
    track_id: Mapped[int] = mapped_column(BigInteger)
    counted: Mapped[str] = mapped_column(String(64))  # the class the device counted it as
    probabilities: Mapped[str] = mapped_column(Text)  # JSON {class: voted probability}
    kind: Mapped[str] = mapped_column(String(8))  # "random" | "unsure"
    detector: Mapped[str] = mapped_column(String(200))
    classifier: Mapped[str] = mapped_column(String(200), index=True)
    needed: Mapped[int] = mapped_column(Integer)  # labels it needs: 1, or 2 for the share shown to two reviewers
    status: Mapped[str] = mapped_column(String(10), index=True)  # "open" | "done" | "contested"
    final: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReviewCrop(Base):
    """One crop of a review item (JPEG, as the classifier saw it, privacy masks applied on the device)."""

    __tablename__ = "review_crops"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    image: Mapped[bytes] = mapped_column(LargeBinary)


class ReviewLabel(Base):
    """One reviewer's label of one item: a material class, ``not_item`` (a part, two items, the belt) or
    ``unknown`` (can't tell); who (their token) and when."""

    __tablename__ = "review_labels"
    __table_args__ = (UniqueConstraint("item", "token_id", name="uq_review_labels_item_token"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    token_id: Mapped[int] = mapped_column(Integer, index=True)
    reviewer: Mapped[str] = mapped_column(String(120))  # the token's name and role, as it was when the label was made
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
