"""An ONNX file's ``metadata_props`` (DESIGN.md §3): read, add or replace; onnx only, no training stack."""

from __future__ import annotations

from pathlib import Path

import onnx


def put_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    """Add or replace ``metadata_props`` entries of a loaded model."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in values.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value


def set_metadata(path: Path, values: dict[str, str]) -> None:
    """Add or replace ``metadata_props`` entries of an ONNX file in place."""
    model = onnx.load(str(path))
    put_metadata(model, values)
    onnx.save(model, str(path))


def read_metadata(path: Path) -> dict[str, str]:
    """All ``metadata_props`` of an ONNX file."""
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
