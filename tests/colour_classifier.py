"""A tiny, exact ONNX material "classifier" for tests: it names a crop by its mean colour.

Input uint8 BGR crops (N, S, S, 3), output softmax probabilities (N, C) over ``NAMES``: ``cardboard`` when
the crop is redder than it is blue, ``glass`` when bluer, the other classes always unlikely. With the
blob detector (``tests/blob_model.py``) it makes a two-stage pipeline whose counts are known exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from blob_model import NAMES
from onnx import TensorProto, helper, numpy_helper


def write_colour_classifier(
    path: Path,
    imgsz: int = 32,
    names: tuple[str, ...] = NAMES,
    task: str = "classify",
    sharpness: float = 0.05,
    flip: bool = False,
    name: str = "colour-test",
    gemm: bool = False,
) -> Path:
    """The colour classifier; ``flip`` swaps red and blue (a classifier that disagrees with the detector);
    ``gemm``: its last layer is a Gemm before the Softmax, as in the real classifier (``classify-adapt`` refits it)."""
    weights = np.zeros((3, len(names)), np.float32)  # rows B, G, R of the mean colour
    red, blue = (1, 0) if flip else (0, 1)
    weights[2, red], weights[0, red] = sharpness, -sharpness
    weights[0, blue], weights[2, blue] = sharpness, -sharpness
    bias = np.full(len(names), -6.0, np.float32)
    bias[[0, 1]] = 0.0
    n = helper.make_node
    graph = helper.make_graph(
        [
            n("Cast", ["crops"], ["f"], to=TensorProto.FLOAT),
            n("ReduceMean", ["f", "axes"], ["mean"], keepdims=0),
            *(
                [n("Gemm", ["mean", "Wt", "b"], ["logits"], transB=1)]
                if gemm
                else [n("MatMul", ["mean", "W"], ["logits0"]), n("Add", ["logits0", "b"], ["logits"])]
            ),
            n("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "colour",
        [helper.make_tensor_value_info("crops", TensorProto.UINT8, ["n", imgsz, imgsz, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", len(names)])],
        initializer=[
            numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
            numpy_helper.from_array(weights, "W") if not gemm else numpy_helper.from_array(np.ascontiguousarray(weights.T), "Wt"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    meta = {"names": json.dumps(list(names)), "imgsz": str(imgsz), "task": task, "farz_name": name, "taxonomy_version": "1"}
    for k, v in meta.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, str(path))
    return path
