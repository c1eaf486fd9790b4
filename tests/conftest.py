"""Shared fixtures: tiny ONNX models with a known output, and a repository root."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["server_fixtures"]
NAMES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")


def write_constant_model(
    path: Path,
    output: np.ndarray,
    names: tuple[str, ...] | None = NAMES,
    imgsz: int = 64,
    extra_metadata: dict[str, str] | None = None,
    task: str = "detect",
    dynamic: bool = False,
) -> Path:
    """An ONNX model with input (1, 3, imgsz, imgsz) — or (1, 3, height, width) when ``dynamic`` — whose
    output is always ``output`` (float32)."""
    const = numpy_helper.from_array(output.astype(np.float32), name="C")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), name="zero")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["z", "C"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "height", "width"] if dynamic else [1, 3, imgsz, imgsz])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        initializer=[const, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    meta = {"imgsz": json.dumps([imgsz, imgsz]), "task": task}
    if names is not None:
        meta["names"] = json.dumps(list(names))
    meta.update(extra_metadata or {})
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


@pytest.fixture
def constant_model(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``constant_model(output_array, **kwargs)`` → path of a tiny ONNX model."""
    counter = iter(range(1000))

    def make(output: np.ndarray, **kwargs: object) -> Path:
        return write_constant_model(tmp_path / f"model{next(counter)}.onnx", output, **kwargs)  # type: ignore[arg-type]

    return make
