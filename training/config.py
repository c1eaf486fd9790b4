"""The training recipe (``training/configs/*.yaml``), validated at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SynthCounts(BaseModel):
    """How many belt scenes to render per split."""

    model_config = ConfigDict(extra="forbid")
    train: int = Field(6000, ge=1)
    val: int = Field(400, ge=1)
    seed: int = 0
    closeup: float = Field(0.0, ge=0, le=1)  # fraction of close-up scenes: 1-3 items at 45-95 % of the short side
    crowded: float = Field(0.0, ge=0, le=1)  # fraction of the other scenes that are loaded belts: piles, rollers, stains
    min_visible: float = Field(0.35, gt=0, le=1)  # an item is labelled when this fraction of it is in sight (the rest: background)
    camera: float = Field(0.0, ge=0, le=1)  # fraction of the other scenes seen by a tilted wide-angle camera (frame, floor, cleats)
    two_tone: float = Field(0.0, ge=0, le=1)  # fraction of items drawn in two tones (a fold, a label), labelled as one item
    poor_camera: float = Field(0.0, ge=0, le=1)  # fraction of scenes as a poorer camera gives them: dim, noisy, blurred, cast, compressed
    flat: float = Field(0.0, ge=0, le=1)  # fraction of items that are flat, straight-edged (sheets, cartons, trays), square half the time
    square: float = Field(0.0, ge=0, le=1)  # fraction of the other items lying as photographed, square to the picture
    photos: bool = False  # also train (and validate) on the real photos behind the split's cut-outs, one box each
    shards: int = Field(1, ge=1, le=256)  # independent render streams, `workers` at a time (1: the single stream of older recipes)


class Augment(BaseModel):
    """Ultralytics augmentation settings applied on top of the generator's variation."""

    model_config = ConfigDict(extra="forbid")
    mosaic: float = 1.0
    mixup: float = 0.0
    degrees: float = 0.0
    fliplr: float = 0.5
    flipud: float = 0.5
    hsv_h: float = 0.015
    hsv_s: float = 0.5
    hsv_v: float = 0.4
    scale: float = 0.5
    translate: float = 0.1


class TrainConfig(BaseModel):
    """One training run: data, architecture, input size, budget."""

    model_config = ConfigDict(extra="forbid")
    name: str = "farz-waste-n"
    model: str = "yolo26n.yaml"
    init: Path | None = None  # start from these weights (a run's .pt, or an FP32 .onnx rebuilt by `recover`) instead of the definition
    imgsz: int = Field(320, ge=32, multiple_of=32)
    epochs: int = Field(300, ge=1)
    hours: float = Field(0.0, ge=0)
    batch: int = Field(32, ge=1)
    workers: int = Field(2, ge=0)
    device: str = "auto"
    seed: int = 0
    patience: int = Field(100, ge=1)
    warmup_epochs: float = Field(3.0, ge=0)
    close_mosaic: int = Field(10, ge=0)
    optimizer: str = "auto"  # Ultralytics optimizer name: auto, SGD, AdamW, ...
    lr0: float = Field(0.01, gt=0)
    lrf: float = Field(0.01, gt=0, le=1)  # final learning rate as a fraction of lr0
    cos_lr: bool = False
    single_class: bool = False  # an item detector: every class trained as one, `item` (the classifier names materials)
    source: Path = Path("../shared/datasets/trashnet")
    cutouts: Path = Path("build/cutouts")
    synth: SynthCounts = SynthCounts()
    augment: Augment = Augment()


Recipe = TypeVar("Recipe", bound=BaseModel)


class ConfigError(ValueError):
    """A config file is missing, unreadable or invalid; the message names the field."""


def load_recipe(path: Path, model: type[Recipe], overrides: dict[str, object] | None = None) -> Recipe:
    """Read a YAML recipe into ``model``; ``overrides`` (e.g. from CLI flags) replace top-level keys.
    Raises ``ConfigError`` naming the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc


def load_train_config(path: Path, overrides: dict[str, object] | None = None) -> TrainConfig:
    """Read a training config; ``overrides`` (e.g. from CLI flags) replace top-level keys."""
    return load_recipe(path, TrainConfig, overrides)
