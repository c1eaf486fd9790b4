"""Server settings: one validated object, from a YAML file or ``FARZ_*`` environment variables."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from server.schemas import CLASS_NAME

DEFAULT_DATABASE_URL = "sqlite:///farz.db"
TAXONOMY_V1 = ("cardboard", "glass", "metal", "paper", "plastic", "trash")  # datasets/taxonomy.yaml, version 1


class SettingsError(ValueError):
    """Invalid server settings; the message names the field."""


class Settings(BaseModel):
    """Everything ``create_app`` needs."""

    model_config = ConfigDict(extra="forbid")
    database_url: str = DEFAULT_DATABASE_URL
    max_body_bytes: int = Field(default=4 * 2**20, ge=1024, description="largest accepted request body")
    max_events_per_batch: int = Field(default=5000, ge=1)
    max_future_s: float = Field(default=300.0, ge=0, description="events stamped further ahead are rejected")
    max_past_days: float = Field(default=30.0, gt=0, description="events older than this are rejected")
    offline_after_s: float = Field(default=120.0, gt=0, description="a device silent this long shows as offline")
    outbox_alert_depth: int = Field(default=1000, ge=1, description="a device whose outbox holds more counts raises an alert")
    live_poll_s: float = Field(default=0.25, gt=0, description="how often a live stream looks for new counts")
    page_size: int = Field(default=1000, ge=1, le=100_000)
    model_dir: str = Field(default="farz-models", description="where registered model files are kept")
    max_model_bytes: int = Field(default=64 * 2**20, ge=1024, description="largest model upload")
    webhook_poll_s: float = Field(default=1.0, gt=0, description="how often the webhook sender looks for due messages")
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="how long one webhook POST may take")
    webhook_backoff_s: float = Field(default=2.0, gt=0, description="first retry delay; it doubles per failure, at most an hour")
    webhook_max_attempts: int = Field(default=20, ge=1, description="a message is given up after this many failed POSTs")
    review_double_share: float = Field(
        default=0.1, ge=0, le=1, description="share of review items shown to two reviewers, whose agreement is reported"
    )
    classes: tuple[str, ...] = Field(
        default=TAXONOMY_V1,
        min_length=1,
        description="the material classes a count may name: the taxonomy of the devices' models (datasets/taxonomy.yaml); "
        "a count of any other class is refused. In a file a list, in FARZ_CLASSES comma-separated",
    )

    @field_validator("classes", mode="before")
    @classmethod
    def _classes_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("classes")
    @classmethod
    def _class_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if not re.match(CLASS_NAME, name)]
        if bad:
            raise ValueError(f"{bad}: a class is lower-case letters, digits, '-' or '_', starting with a letter")
        if len(set(value)) != len(value):
            raise ValueError("a class is named twice")
        return value

    @staticmethod
    def load(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
        """Settings from ``path`` (YAML) if given, then ``FARZ_<FIELD>`` environment variables on top."""
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        if path is not None:
            try:
                raw = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise SettingsError(f"{path}: cannot read the settings ({exc})") from exc
        for name in Settings.model_fields:
            key = f"FARZ_{name.upper()}"
            if key in env:
                raw[name] = env[key]
        try:
            return Settings.model_validate(raw)
        except ValidationError as exc:
            raise SettingsError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc
