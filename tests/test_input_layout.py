"""The INT8 model's uint8 BGR input: same outputs as the float RGB input it replaces, both ways, clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from training.input_layout import FLOAT_RGB_NCHW, UINT8_BGR_NHWC, LayoutError, convert_file, input_format, to_float_input, to_uint8_input
from vision import OnnxDetector, letterbox
from vision.errors import ModelError

REPO = Path(__file__).resolve().parent.parent
INT8 = REPO / "models" / "farz-waste.int8.onnx"
FP32 = REPO / "models" / "farz-waste.onnx"
SAMPLES = sorted((REPO / "datasets" / "eval" / "belt-heldout" / "images" / "val").glob("*.jpg"))[:6]


@pytest.fixture(scope="module")
def float_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("layout") / "float-input.int8.onnx"
    assert convert_file(INT8, out, uint8=False) == FLOAT_RGB_NCHW
    return out


def test_shipped_int8_model_reads_uint8_bgr_pixels() -> None:
    detector = OnnxDetector(INT8)
    assert detector.info.uint8_input and detector.info.dynamic and detector.info.imgsz == (320, 320)
    frame = cv2.imread(str(SAMPLES[0]), cv2.IMREAD_COLOR)
    blob, _ = detector.preprocess(frame)
    assert blob.dtype == np.uint8 and blob.shape[0] == 1 and blob.shape[3] == 3 and blob.shape[1] % 32 == 0
    assert not OnnxDetector(FP32).info.uint8_input


def test_uint8_and_float_input_give_bit_identical_outputs(float_copy: Path) -> None:
    uint8_model, float_model = OnnxDetector(INT8), OnnxDetector(float_copy)
    assert not float_model.info.uint8_input
    for path in SAMPLES:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        boxed, _ = letterbox(frame, (320, 320), 32)
        a = uint8_model.infer(uint8_model.to_input(boxed))
        b = float_model.infer(float_model.to_input(boxed))
        np.testing.assert_array_equal(a, b)
        da, db = uint8_model(frame), float_model(frame)
        np.testing.assert_array_equal(da.xyxy, db.xyxy)
        np.testing.assert_array_equal(da.class_id, db.class_id)


def test_round_trip_restores_the_float_graph(float_copy: Path) -> None:
    again = to_float_input(to_uint8_input(onnx.load(str(float_copy))))
    original = onnx.load(str(float_copy))
    assert input_format(again) == FLOAT_RGB_NCHW and again.graph.input[0] == original.graph.input[0]
    assert list(again.graph.initializer) == list(original.graph.initializer)
    assert sorted(n.SerializeToString() for n in again.graph.node) == sorted(n.SerializeToString() for n in original.graph.node)


def test_converting_what_cannot_be_converted_says_why(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="quantize the model first"):
        to_uint8_input(onnx.load(str(FP32)))
    with pytest.raises(LayoutError, match="already uint8"):
        to_uint8_input(onnx.load(str(INT8)))
    with pytest.raises(LayoutError, match="not the uint8 BGR input"):
        to_float_input(onnx.load(str(FP32)))
    with pytest.raises(FileNotFoundError):
        convert_file(tmp_path / "missing.onnx", tmp_path / "out.onnx", uint8=True)
    assert input_format(onnx.load(str(INT8))) == UINT8_BGR_NHWC


def test_detector_refuses_a_uint8_input_that_is_not_bgr_pixels(tmp_path: Path) -> None:
    image = helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 3, 64, 64])  # channels first: not a frame
    out = helper.make_tensor_value_info("out", TensorProto.UINT8, [1, 3, 64, 64])
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "g", [image], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"uint8 \(1, H, W, 3\)"):
        OnnxDetector(path)
