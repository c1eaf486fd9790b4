"""The INT8 model's uint8 BGR input: same outputs as the float RGB input it replaces, both ways, clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from training.input_layout import FLOAT_RGB_NCHW, UINT8_BGR_NHWC, LayoutError, convert_file, input_format, to_float_input, to_uint8_input
from training.metadata import set_metadata
from training.quantize import quantize
from vision import OnnxDetector
from vision.errors import ModelError
from vision.geometry import to_blob

NAMES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")

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


def tiny_float_model(path: Path) -> Path:
    """Conv(3→4, 3x3, stride 2) → Relu → Conv(4→6, 1x1) on a dynamic (N, 3, H, W) float input, farz metadata."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), "w0"),
        numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b0"),
        numpy_helper.from_array(rng.normal(0, 0.5, (6, 4, 1, 1)).astype(np.float32), "w1"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], strides=[2, 2], name="/model.0/conv/Conv"),
        helper.make_node("Relu", ["c0"], ["r0"], name="/model.0/act/Relu"),
        helper.make_node("Conv", ["r0", "w1"], ["out"], name="/model.1/conv/Conv"),
    ]
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph(nodes, "tiny", [image], [out], inits), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    set_metadata(path, {"imgsz": "[32, 32]", "stride": "32", "names": str(list(NAMES))})
    return path


def run(model: Path | onnx.ModelProto, feed: np.ndarray) -> np.ndarray:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"images": feed})[0])


@pytest.mark.parametrize("first_conv_fp32", [False, True], ids=["first-conv-int8", "first-conv-fp32"])
def test_uint8_input_gives_the_float_input_outputs(tmp_path: Path, first_conv_fp32: bool) -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (32, 32 + 8 * i, 3), dtype=np.uint8) for i in range(4)]
    calib = []
    for i, frame in enumerate(frames):
        calib.append(tmp_path / f"calib{i}.png")
        cv2.imwrite(str(calib[-1]), frame)
    fp32 = tiny_float_model(tmp_path / "tiny.onnx")
    float_int8, uint8_int8 = tmp_path / "float.int8.onnx", tmp_path / "uint8.int8.onnx"
    quantize(fp32, float_int8, calib, uint8_input=False, first_conv_fp32=first_conv_fp32)
    quantize(fp32, uint8_int8, calib, first_conv_fp32=first_conv_fp32)
    assert input_format(onnx.load(str(uint8_int8))) == UINT8_BGR_NHWC
    for frame in frames:
        a, b = run(float_int8, to_blob(frame)), run(uint8_int8, frame[None])
        if first_conv_fp32:  # the reversed input channels are summed in another order: equal to float rounding
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        else:  # the pixels are the quantized input: bit for bit
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(run(to_float_input(onnx.load(str(uint8_int8))), to_blob(frame)), a)


def test_shipped_int8_model_detects_the_same_with_either_input(float_copy: Path) -> None:
    uint8_model, float_model = OnnxDetector(INT8), OnnxDetector(float_copy)
    assert not float_model.info.uint8_input
    for path in SAMPLES:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        da, db = uint8_model(frame), float_model(frame)
        np.testing.assert_array_equal(da.class_id, db.class_id)
        # Float rounding in the FP32 first conv can move a value requantized after it by one step.
        np.testing.assert_allclose(da.xyxy, db.xyxy, atol=2.0)
        np.testing.assert_allclose(da.confidence, db.confidence, atol=0.05)


def test_round_trip_restores_the_float_graph(float_copy: Path) -> None:
    again = to_float_input(to_uint8_input(onnx.load(str(float_copy))))
    original = onnx.load(str(float_copy))
    assert input_format(again) == FLOAT_RGB_NCHW and again.graph.input[0] == original.graph.input[0]
    assert sorted(n.SerializeToString() for n in again.graph.node) == sorted(n.SerializeToString() for n in original.graph.node)
    assert list(again.graph.initializer) == list(original.graph.initializer)


def test_converting_what_cannot_be_converted_says_why(tmp_path: Path) -> None:
    relu_first = onnx.load(str(tiny_float_model(tmp_path / "tiny.onnx")))
    relu_first.graph.node[0].op_type = "Relu"  # the image no longer feeds a Conv
    with pytest.raises(LayoutError, match="expected one QuantizeLinear or one Conv"):
        to_uint8_input(relu_first)
    with pytest.raises(LayoutError, match="already uint8"):
        to_uint8_input(onnx.load(str(INT8)))
    with pytest.raises(LayoutError, match="not the uint8 BGR input"):
        to_float_input(onnx.load(str(FP32)))
    with pytest.raises(FileNotFoundError, match="no such model file"):
        convert_file(tmp_path / "missing.onnx", tmp_path / "out.onnx", uint8=True)
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    with pytest.raises(LayoutError, match="not an ONNX model"):
        convert_file(tmp_path / "garbage.onnx", tmp_path / "out.onnx", uint8=True)
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
