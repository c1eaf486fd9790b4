"""Setting up a sorting point from the live view: validate an edit of the count geometry, try it on the
live picture (a dry run), and save it into the agent's config file atomically.

An edit is a JSON object with any of ``lines``, ``zones``, ``masks``, ``ignore`` (the ``count:`` keys of
the agent config, 0-1 coordinates). Saving writes a temporary file beside the config, fsyncs it, checks
it exactly as ``farz device check-config`` does, keeps the old file as ``NAME.bak`` and renames the new
one into place, so a crash at any point leaves a valid config.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from pathlib import Path

import yaml
from pydantic import ValidationError

from device.config import AgentConfig, load_agent_config
from device.count import build_counters
from device.count_config import ConfigError, CountSettings, format_validation_error
from vision import CountEvent, Detections
from vision.pipeline import Counter

EDITABLE = ("lines", "zones", "masks", "ignore")


class SetupError(ValueError):
    """An edit that cannot be tried or saved; the message names the field."""


def geometry(settings: CountSettings) -> dict[str, object]:
    """The editable part of ``settings`` as JSON-ready data."""
    dumped = settings.model_dump(mode="json")
    return {key: dumped[key] for key in EDITABLE}


def apply_edit(current: CountSettings, edit: object) -> CountSettings:
    """``current`` with the keys of ``edit`` replaced, validated; SetupError names the first bad field."""
    if not isinstance(edit, dict):
        raise SetupError("the edit must be a JSON object with lines, zones, masks and/or ignore")
    unknown = sorted(set(edit) - set(EDITABLE))
    if unknown:
        raise SetupError(f"count.{unknown[0]}: not editable from the live view (editable: {', '.join(EDITABLE)})")
    merged = current.model_dump(mode="json", exclude={"line"})
    merged.update(edit)
    try:
        return CountSettings.model_validate(merged)
    except ValidationError as exc:
        raise SetupError(format_validation_error("edit", exc, "count.").split("\n")[0].removeprefix("edit: ")) from None


def save_count_settings(config_path: Path, settings: CountSettings) -> Path:
    """Write ``settings`` as the ``count:`` section of the agent config at ``config_path``, atomically;
    returns the backup's path. The file is validated as ``farz device check-config`` does before it replaces
    the old one; SetupError (and the old file untouched) when it would not be valid."""
    try:
        raw = yaml.safe_load(config_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SetupError(f"{config_path}: cannot read the current config ({exc})") from None
    if not isinstance(raw, dict):
        raise SetupError(f"{config_path}: expected a mapping of settings at the top level")
    raw["count"] = settings.model_dump(mode="json", exclude={"line", "anchor"})
    tmp = config_path.with_name(f".{config_path.name}.{os.getpid()}.tmp")
    backup = config_path.with_name(config_path.name + ".bak")
    try:
        with tmp.open("w") as f:
            f.write("# farz device agent configuration; the count section was last saved from the live view's setup page.\n")
            f.write("# The previous version is kept beside this file as " + backup.name + ".\n")
            yaml.safe_dump(raw, f, sort_keys=False, default_flow_style=None)
            f.flush()
            os.fsync(f.fileno())
        try:
            load_agent_config(tmp)
        except ConfigError as exc:
            raise SetupError(str(exc).replace(str(tmp), str(config_path)).split("\n")[0]) from None
        shutil.copy2(config_path, backup)
        os.replace(tmp, config_path)
        directory = os.open(config_path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        raise SetupError(f"{config_path}: cannot write the config ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return backup


class DryRun:
    """Counts the live tracks with proposed settings beside the real counters, for ``max_s`` seconds; the
    events it makes are shown, never stored or sent."""

    def __init__(self, settings: CountSettings, names: tuple[str, ...], max_s: float = 600.0, keep: int = 50) -> None:
        self.settings = settings
        self.counters: list[Counter] = build_counters(settings, names)
        self.started = time.monotonic()
        self.max_s = max_s
        self.frames = 0
        self.events: deque[CountEvent] = deque(maxlen=keep)
        self.total = 0

    @property
    def expired(self) -> bool:
        return time.monotonic() - self.started > self.max_s

    def feed(self, detections: Detections, width: int, height: int, frame_index: int) -> None:
        """Count one frame's tracked detections (their own classes) with the proposed lines and zones."""
        self.frames += 1
        for counter in self.counters:
            for event in counter.update(detections, width, height, frame_index):
                self.events.append(event)
                self.total += 1

    def state(self) -> dict[str, object]:
        totals: dict[str, dict[str, int]] = {"in": {}, "out": {}}
        for counter in self.counters:
            for (direction, name), n in counter.totals.items():
                totals.setdefault(direction, {})[name] = totals.get(direction, {}).get(name, 0) + n
        return {
            "active": True,
            "seconds": round(time.monotonic() - self.started, 1),
            "frames": self.frames,
            "counted": self.total,
            "totals": totals,
            "events": [{"line": e.line, "class": e.class_name, "direction": e.direction, "track_id": e.track_id} for e in self.events],
            "settings": geometry(self.settings),
        }


def agent_config_with(config: AgentConfig, settings: CountSettings) -> AgentConfig:
    """``config`` with its count settings replaced (already validated)."""
    return config.model_copy(update={"count": settings})
