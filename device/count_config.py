"""Count settings: lines, zones and thresholds, from ``--config FILE`` or a video's ``NAME.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vision.counter import LineSpec
from vision.input_size import INPUT_SIZES

Anchor = Literal["center", "bottom_center"]


class ConfigError(ValueError):
    """A settings file is missing, unreadable or invalid; the message names the file and field."""


class LineConfig(BaseModel):
    """A named count line: ``points`` = [x1, y1, x2, y2] in 0-1 coordinates."""

    model_config = ConfigDict(extra="forbid")
    name: str = "line-1"
    points: tuple[float, float, float, float]
    anchor: Anchor = "center"

    @field_validator("points")
    @classmethod
    def _in_unit_square(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if not all(0.0 <= c <= 1.0 for c in v):
            raise ValueError(f"coordinates must be in 0-1, got {list(v)}")
        if v[:2] == v[2:]:
            raise ValueError("the two end points are the same")
        return v

    def spec(self) -> LineSpec:
        return LineSpec(*self.points, name=self.name, anchor=self.anchor)


class RegionConfig(BaseModel):
    """A named polygon with at least three 0-1 points: a privacy mask or an ignore zone."""

    model_config = ConfigDict(extra="forbid")
    name: str = "region-1"
    polygon: list[tuple[float, float]] = Field(min_length=3)

    @field_validator("polygon")
    @classmethod
    def _in_unit_square(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if not all(0.0 <= c <= 1.0 for p in v for c in p):
            raise ValueError("coordinates must be in 0-1")
        return v


class ZoneConfig(RegionConfig):
    """A named count zone: items entering it count ``in``, leaving it ``out``."""

    name: str = "zone-1"
    anchor: Anchor = "center"


class CountSettings(BaseModel):
    """What to count and how. ``line`` is shorthand for one line named ``line-1``."""

    model_config = ConfigDict(extra="forbid")
    line: tuple[float, float, float, float] | None = None
    anchor: Anchor = "center"
    lines: list[LineConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    masks: list[RegionConfig] = Field(
        default_factory=list,
        description="privacy masks: black in the live view, hard samples and saved videos; the detector still sees them",
    )
    ignore: list[RegionConfig] = Field(
        default_factory=list, description="ignore zones: detections centred inside are dropped before tracking"
    )
    confidence: float = Field(default=0.25, gt=0, lt=1)
    iou: float = Field(default=0.5, gt=0, lt=1)
    threads: int = Field(default=0, ge=0, description="ONNX Runtime intra-op threads, 0 = all cores")
    input_size: int | Literal["auto"] = Field(
        default="auto",
        description="px, the long side of the detector's input: a multiple of 32 in 160-1280, or `auto` (the model's "
        "own, larger once the first boxes show items small in it)",
    )

    turn_upright: bool = Field(
        default=True,
        description="a belt seen at a slant (the first count line 10 degrees or more from the picture's axes) is turned "
        "upright before detection, by the line's slant",
    )

    @field_validator("input_size")
    @classmethod
    def _input_size(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not (INPUT_SIZES[0] <= v <= INPUT_SIZES[1] and v % 32 == 0):
            raise ValueError(f"must be `auto` or a multiple of 32 in {INPUT_SIZES[0]}-{INPUT_SIZES[1]}, got {v}")
        return v

    @model_validator(mode="after")
    def _merge_shorthand(self) -> CountSettings:
        if self.line is not None:
            self.lines = [LineConfig(name="line-1", points=self.line, anchor=self.anchor), *self.lines]
            self.line = None
        names = [c.name for c in self.lines] + [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ValueError(f"line and zone names must be unique, got {names}")
        for kind, regions in (("mask", self.masks), ("ignore zone", self.ignore)):
            region_names = [r.name for r in regions]
            if len(set(region_names)) != len(region_names):
                raise ValueError(f"{kind} names must be unique, got {region_names}")
        return self

    def line_specs(self) -> tuple[LineSpec, ...]:
        return tuple(c.spec() for c in self.lines)


DEFAULT_LINE = (0.5, 1.0, 0.5, 0.0)  # vertical through the middle: left-to-right motion counts as `in`


def format_validation_error(path: Path | str, exc: ValidationError, prefix: str = "") -> str:
    """One readable line per problem: ``file: field.path: message`` (``prefix`` before each field path)."""
    return "\n".join(f"{path}: {prefix}{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors())


def is_agent_config(raw: object) -> bool:
    """Whether a parsed YAML document is a device agent's config (its count settings under ``count:``)."""
    return isinstance(raw, dict) and "device_id" in raw and "source" in raw


def load_count_settings(path: Path) -> CountSettings:
    """Read and validate a count settings YAML file, or the ``count:`` section of a device agent's config
    (so a line set in the device's browser editor counts the same in ``farz count --config``); raises
    ConfigError naming every problem."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the settings file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    prefix = ""
    if is_agent_config(raw):
        raw, prefix = raw.get("count") or {}, "count."
    try:
        return CountSettings.model_validate(raw or {})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, prefix)) from exc


def settings_for_video(video: Path, config: Path | None, line: LineSpec | None) -> CountSettings:
    """Settings for counting ``video``: ``--config`` if given, else ``NAME.yaml`` beside the video,
    else defaults; ``--line`` replaces the lines of either."""
    if config is not None:
        settings = load_count_settings(config)
    elif line is None and video.with_suffix(".yaml").is_file():
        settings = load_count_settings(video.with_suffix(".yaml"))
    else:
        settings = CountSettings()
    if line is not None:
        settings.lines = [LineConfig(name=line.name, points=(line.x1, line.y1, line.x2, line.y2), anchor=cast(Anchor, line.anchor))]
    if not settings.lines and not settings.zones:
        settings.lines = [LineConfig(name="line-1", points=DEFAULT_LINE, anchor=settings.anchor)]
    return settings
