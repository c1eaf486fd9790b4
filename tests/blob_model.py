"""A tiny, exact ONNX "detector" for end-to-end tests: it finds the one bright square in the frame.

Output is the YOLO11 layout ``(1, 4 + nc, 1)``: the centroid and size of all pixels brighter than 0.5,
class 0 (``cardboard``) when the blob is redder than it is blue, else class 1 (``glass``); score 1 when
a blob is present, 0 when not. With one item in view at a time its counts are exact, so tests of the
agent, outbox and server can compare totals with a known truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NAMES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")


def write_blob_model(path: Path, imgsz: int = 64, score: float = 1.0, name: str = "blob-test", names: tuple[str, ...] = NAMES) -> Path:
    """The blob detector; ``score`` scales its confidence, ``name`` and ``names`` go into its metadata."""
    s = imgsz
    xs = np.tile((np.arange(s, dtype=np.float32) + 0.5)[None, :], (s, 1))[None, None]
    inits = [
        numpy_helper.from_array(xs, "X"),
        numpy_helper.from_array(np.ascontiguousarray(xs.transpose(0, 1, 3, 2)), "Y"),
        numpy_helper.from_array(np.array([1], np.int64), "ax1"),
        numpy_helper.from_array(np.array([0, 1, 2, 3], np.int64), "all"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array(1e-6, np.float32), "eps"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(score, np.float32), "score"),
        numpy_helper.from_array(np.zeros(len(NAMES) - 2, np.float32), "zeros"),
        numpy_helper.from_array(np.array([1, 4 + len(NAMES), 1], np.int64), "shape"),
        numpy_helper.from_array(np.array([0], np.int64), "c0"),
        numpy_helper.from_array(np.array([1], np.int64), "c1"),
        numpy_helper.from_array(np.array([2], np.int64), "c2"),
        numpy_helper.from_array(np.array([3], np.int64), "c3"),
    ]
    n = helper.make_node
    nodes = [
        n("ReduceMax", ["images", "ax1"], ["gray"], keepdims=1),
        n("Greater", ["gray", "half"], ["maskb"]),
        n("Cast", ["maskb"], ["mask"], to=TensorProto.FLOAT),
        n("ReduceSum", ["mask", "all"], ["area"], keepdims=0),
        n("Add", ["area", "eps"], ["area_e"]),
        n("Mul", ["mask", "X"], ["mx"]),
        n("ReduceSum", ["mx", "all"], ["sx"], keepdims=0),
        n("Mul", ["mask", "Y"], ["my"]),
        n("ReduceSum", ["my", "all"], ["sy"], keepdims=0),
        n("Div", ["sx", "area_e"], ["cx"]),
        n("Div", ["sy", "area_e"], ["cy"]),
        n("Sqrt", ["area"], ["side"]),
        n("Min", ["area", "one"], ["present01"]),
        n("Mul", ["present01", "score"], ["present"]),
        n("Slice", ["images", "c0", "c1", "ax1"], ["red"]),
        n("Slice", ["images", "c2", "c3", "ax1"], ["blue"]),
        n("Mul", ["red", "mask"], ["rm"]),
        n("Mul", ["blue", "mask"], ["bm"]),
        n("ReduceSum", ["rm", "all"], ["rs"], keepdims=0),
        n("ReduceSum", ["bm", "all"], ["bs"], keepdims=0),
        n("Greater", ["rs", "bs"], ["redder_b"]),
        n("Cast", ["redder_b"], ["redder"], to=TensorProto.FLOAT),
        n("Sub", ["one", "redder"], ["bluer"]),
        n("Mul", ["present", "redder"], ["s0"]),
        n("Mul", ["present", "bluer"], ["s1"]),
        n("Reshape", ["cx", "c1"], ["cx1"]),
        n("Reshape", ["cy", "c1"], ["cy1"]),
        n("Reshape", ["side", "c1"], ["w1"]),
        n("Reshape", ["s0", "c1"], ["s01"]),
        n("Reshape", ["s1", "c1"], ["s11"]),
        n("Concat", ["cx1", "cy1", "w1", "w1", "s01", "s11", "zeros"], ["flat"], axis=0),
        n("Reshape", ["flat", "shape"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "blob",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, s, s])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + len(NAMES), 1])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    meta = {"names": json.dumps(list(names)), "imgsz": json.dumps([s, s]), "task": "detect", "farz_name": name, "taxonomy_version": "1"}
    for k, v in meta.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, str(path))
    return path


def blob_classifier(model: Path) -> Path:
    """The colour classifier beside a blob model (``tests/colour_classifier.py``), written on first use: with
    it the two-stage pipeline names red items ``cardboard`` and blue ones ``glass``, as the blob detector does."""
    from colour_classifier import write_colour_classifier

    path = model.with_name(model.stem + ".colour.onnx")
    return path if path.is_file() else write_colour_classifier(path)


def write_blob_video(
    path: Path,
    items: list[str],
    size: tuple[int, int] = (128, 96),
    step: int = 8,
    fps: int = 20,
    background: np.ndarray | None = None,
) -> dict[str, object]:
    """Squares crossing left to right one after another (``items``: 'red' or 'blue'); writes the video,
    a ``NAME.yaml`` with a vertical middle line (left-to-right = in) and returns the truth. ``background``
    (H, W, 3 uint8, every channel below 128 so the blob model never sees it) replaces the flat dark grey."""
    w, h = size
    side = 16
    ground = np.full((h, w, 3), 20, np.uint8) if background is None else background
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    for colour in items:
        bgr = (40, 40, 255) if colour == "red" else (255, 80, 40)
        for x in range(-side, w + side, step):
            frame = ground.copy()
            cv2.rectangle(frame, (x, h // 2 - side // 2), (x + side, h // 2 + side // 2), bgr, -1)
            writer.write(frame)
        for _ in range(3):
            writer.write(ground.copy())
    writer.release()
    path.with_suffix(".yaml").write_text("line: [0.5, 1.0, 0.5, 0.0]\n")
    counts = {"in": {}, "out": {}}
    for colour in items:
        name = "cardboard" if colour == "red" else "glass"
        counts["in"][name] = counts["in"].get(name, 0) + 1
    return {"counts": counts}
