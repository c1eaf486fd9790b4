"""``offline_ultralytics``: Ultralytics with no network, for every command that imports it."""

from __future__ import annotations

import os
from pathlib import Path


def offline_ultralytics(run_root: Path) -> None:
    """Make Ultralytics run with no network: no hub, no font or weight downloads, settings kept local."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(run_root / ".ultralytics"))
    os.environ.setdefault("YOLO_VERBOSE", "False")
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
