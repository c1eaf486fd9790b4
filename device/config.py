"""The device agent's one YAML config, validated with pydantic (unknown keys are errors)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from device.count_config import ConfigError, CountSettings, format_validation_error

SOURCE_PATTERN = re.compile(
    r"^(picamera(:\d+)?|usb:\d+|(rtsp|rtsps|http|https)://.+|.+\.(mp4|avi|mkv|mov|m4v|webm|mpg|mpeg|h264))$", re.IGNORECASE
)


class OutboxConfig(BaseModel):
    """Where counts wait for upload: a disk budget and upload batch size."""

    model_config = ConfigDict(extra="forbid")
    max_mb: float = Field(default=256.0, gt=0, description="disk budget of the outbox; when full the agent stops counting and says so")
    batch_size: int = Field(default=500, ge=1, le=5000)


class LiveViewConfig(BaseModel):
    """The staff live view on the device's own address."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    max_fps: float = Field(default=10.0, gt=0, description="frames/s of the MJPEG stream")
    token_file: Path | None = Field(
        default=None, description="the device-local installer token; default DATA_DIR/liveview.token, made on first start"
    )
    token_cache_s: float = Field(default=60.0, gt=0, description="seconds a server's answer about a token is used before asking again")
    token_offline_s: float = Field(
        default=12 * 3600.0, ge=0, description="while the server is unreachable, tokens it accepted this recently still open the view"
    )


class HardSampleConfig(BaseModel):
    """Frames the device was unsure about, kept for the data scientists (bounded on disk)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    max_samples: int = Field(default=50, ge=1, le=10_000)
    min_interval_s: float = Field(default=10.0, ge=0)


class ReviewConfig(BaseModel):
    """Counted tracks kept for people to name their material (two-stage pipeline only; bounded on disk)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    sample_rate: float = Field(default=0.05, ge=0, le=1, description="share of counted tracks kept at random (the trust figures' sample)")
    max_items: int = Field(default=500, ge=1, le=100_000, description="items waiting on disk; beyond it the oldest unsure ones go first")
    seed: int | None = Field(default=None, description="seed of the random draw (tests); none: a new draw each start")


class AgentConfig(BaseModel):
    """Everything one device agent needs; ``farz device init`` writes a commented example."""

    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    site: str = Field(default="", max_length=64)
    server_url: str = Field(default="", description="base URL of the farz server; empty = count offline into the outbox")
    token_file: Path | None = None
    source: str = Field(description="video file path, rtsp:// or http:// URL, usb:N, or picamera")
    model: Path = Path("models/farz-waste.int8.onnx")
    classifier: Path | None = Field(
        default=Path("models/farz-material.int8.onnx"),
        description="material classifier voted per track over crops of the detector's boxes; null counts with the detector's classes",
    )
    data_dir: Path = Path("/var/lib/farz")
    count: CountSettings = Field(default_factory=CountSettings)
    realtime: bool = Field(default=False, description="pace a video file at its own frame rate (a file replay never drops frames)")
    loop: bool = Field(default=False, description="start a video file again when it ends (demos)")
    upload_interval_s: float = Field(default=2.0, gt=0)
    heartbeat_interval_s: float = Field(default=30.0, gt=0)
    request_timeout_s: float = Field(default=10.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0, description="longest pause between upload retries")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    model_check_interval_s: float = Field(default=60.0, gt=0, description="how often to ask the server for an assigned model")
    hard_samples: HardSampleConfig = Field(default_factory=HardSampleConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    live_view: LiveViewConfig = Field(default_factory=LiveViewConfig)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("classifier", mode="before")
    @classmethod
    def _none_word(cls, v: object) -> object:
        return None if isinstance(v, str) and v.strip().lower() in {"none", "null", ""} else v

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        if not SOURCE_PATTERN.match(v.strip()):
            raise ValueError("expected a video file (.mp4, .avi, ...), rtsp://… or http://… URL, usb:N, or picamera")
        return v.strip()

    @field_validator("server_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("expected http://host[:port] or https://host[:port]")
        return v.rstrip("/")


def read_token_file(path: Path) -> str:
    """The token in ``path`` (whitespace stripped); ConfigError when unreadable or empty."""
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"token file {path}: cannot read it ({exc.strerror})") from exc
    if not token:
        raise ConfigError(f"token file {path}: the file is empty")
    return token


def load_agent_config(path: Path, overrides: dict[str, object] | None = None) -> AgentConfig:
    """Read ``path``, apply ``overrides`` (dotted keys allowed, e.g. ``count.line``) and validate.

    Raises ConfigError with one line per problem, each naming the file and the field.
    """
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return agent_config_from(raw, overrides, path)


def agent_config_from(raw: dict[str, Any], overrides: dict[str, object] | None, source: Path) -> AgentConfig:
    """Validate the settings ``raw`` after applying ``overrides`` (dotted keys allowed; None: keep); problems
    are a ConfigError naming ``source`` (a file, or ``(command line)``) and the field."""
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        target = raw
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from exc


EXAMPLE_CONFIG = """\
# farz device agent configuration. Check it with `farz device check-config THIS_FILE`.
device_id: berkane-c1-cam2          # unique per device; letters, digits, . _ -
site: berkane-c1                    # the site this device belongs to (the server knows it too)
server_url: http://farz.example.org:8000   # empty: count offline, everything waits in the outbox
token_file: /etc/farz/device.token  # the device token printed once by `farz server admin create-device`
source: picamera                    # picamera | usb:0 | rtsp://user:pass@cam/stream | /path/to/video.mp4
model: /opt/farz/models/farz-waste.int8.onnx          # the item detector
classifier: /opt/farz/models/farz-material.int8.onnx  # the material of each track, voted over its crops; null: the detector's classes
data_dir: /var/lib/farz             # outbox (SQLite) and replay position live here
realtime: false                     # video files only: pace at the file's frame rate
count:
  lines:
    - name: belt-1
      points: [0.5, 1.0, 0.5, 0.0]  # x1, y1, x2, y2 in 0-1; crossing to where (x2-x1)*(y-y1)-(y2-y1)*(x-x1) > 0 is `in`
      anchor: center                # or bottom_center
  zones: []                         # polygons: - {name: chute, polygon: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}
  masks: []                         # privacy masks: black in the live view, hard samples, review crops and saved videos
  ignore: []                        # ignore zones: detections centred inside are dropped (a sign, a person's hands)
  confidence: 0.25
  threads: 0                        # ONNX Runtime threads, 0 = all cores
  input_size: auto                  # detector input long side, px: auto (320, larger for small items) or a multiple of 32, 160-1280
  turn_upright: true                # a belt at a slant (first line 5 degrees or more off the axes) is turned upright to detect
upload_interval_s: 2
heartbeat_interval_s: 30
request_timeout_s: 10
outbox:
  max_mb: 256                       # disk budget; when full the agent stops counting and logs it loudly
  batch_size: 500
review:                             # counted items kept for people to name their material on the server's /review page
  enabled: true
  sample_rate: 0.05                 # share kept at random (the site's trust figures come from these); unsure ones always
  max_items: 500                    # waiting on disk at most; beyond it the oldest unsure ones go first
live_view:                          # every page but /healthz needs a token: a viewer's from the server, or this device's own
  enabled: true
  host: 0.0.0.0
  port: 8080
  max_fps: 10
  token_file: null                  # the device-local installer token; null: DATA_DIR/liveview.token, made on first start
log_level: INFO
"""
