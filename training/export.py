"""``farz train export``: PyTorch weights → simplified ONNX carrying farz's metadata (DESIGN.md §3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from training.metadata import set_metadata
from training.offline import offline_ultralytics
from training.taxonomy import Taxonomy
from vision import ITEM_CLASSES


def farz_metadata(
    taxonomy: Taxonomy, name: str, imgsz: int, data_hash: str, metrics: dict[str, object] | None, names: tuple[str, ...] | None = None
) -> dict[str, str]:
    """The metadata farz requires of a model: class list in taxonomy order (or ``item`` alone), input size,
    provenance; ``taxonomy_version`` is the taxonomy its classes (or its classifier's) come from."""
    return {
        "names": json.dumps(list(names or taxonomy.names)),
        "imgsz": json.dumps([imgsz, imgsz]),
        "task": "detect",
        "taxonomy_version": str(taxonomy.version),
        "farz_name": name,
        "data_hash": data_hash,
        "metrics": json.dumps(metrics or {}),
    }


def export_onnx(
    weights: Path, out: Path, taxonomy: Taxonomy, name: str, imgsz: int, data_hash: str = "", opset: int = 18, dynamic: bool = True
) -> Path:
    """Export ``weights`` (best.pt) to ``out`` (.onnx), simplified, with farz metadata; returns ``out``.

    ``dynamic``: free input height and width (batch stays 1 in use). ``imgsz`` is then the longest side
    frames are scaled to, and each frame is padded only to a multiple of the stride: a 16:9 camera runs
    at 320×192, 40 % less work than 320×320, with the same pixels on the items.
    """
    offline_ultralytics(out.parent)
    from ultralytics import YOLO

    model = YOLO(str(weights))
    model_names = tuple(model.names[i] for i in sorted(model.names))
    if model_names not in (taxonomy.names, ITEM_CLASSES):
        expected = f"taxonomy v{taxonomy.version}'s {list(taxonomy.names)} nor {list(ITEM_CLASSES)}"
        raise ValueError(f"{weights}: classes {list(model_names)} are neither {expected}")
    exported = Path(model.export(format="onnx", imgsz=imgsz, simplify=True, opset=opset, dynamic=dynamic, half=False, verbose=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    if exported.resolve() != out.resolve():
        shutil.move(str(exported), out)
    set_metadata(out, farz_metadata(taxonomy, name, imgsz, data_hash, None, model_names))
    return out
