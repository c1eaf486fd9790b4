"""OnnxDetector on tiny ONNX models with a known output: both head layouts, metadata, clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vision import DetectorSettings, ModelError, OnnxDetector


def yolo11_output(boxes_cxcywh: list[tuple[float, float, float, float]], class_scores: list[list[float]], anchors: int = 50) -> np.ndarray:
    nc = len(class_scores[0])
    out = np.zeros((1, 4 + nc, anchors), np.float32)
    for i, (box, scores) in enumerate(zip(boxes_cxcywh, class_scores, strict=True)):
        out[0, :4, i] = box
        out[0, 4:, i] = scores
    return out


def test_yolo11_head_decodes_to_frame_pixels_with_nms(constant_model: Callable[..., Path]) -> None:
    # Model input 64x64; frame 128x64 (w x h) → ratio 0.5, pad_y 16.
    out = yolo11_output(
        [(32, 32, 16, 8), (33, 32, 16, 8), (10, 40, 4, 4)],
        [[0.9, 0, 0, 0, 0, 0], [0.8, 0, 0, 0, 0, 0], [0, 0, 0.7, 0, 0, 0]],
    )
    det = OnnxDetector(constant_model(out), DetectorSettings(confidence=0.25, iou=0.5))
    result = det(np.zeros((64, 128, 3), np.uint8))
    assert det.info.head == "yolo11" and det.names[0] == "cardboard" and det.info.imgsz == (64, 64)
    assert result.class_id.tolist() == [0, 2]  # the 0.8 duplicate is suppressed
    np.testing.assert_allclose(result.xyxy[0], [48, 24, 80, 40], atol=1e-4)  # (32±8, 32±4 - 16) / 0.5
    np.testing.assert_allclose(result.confidence, [0.9, 0.7], atol=1e-6)


def test_dynamic_input_model_pads_frames_only_to_a_stride_multiple(constant_model: Callable[..., Path]) -> None:
    # imgsz 64, frame 128x40 (w x h) → 64x20, padded to 64x32 (stride 32), not 64x64: pad_y 6.
    out = yolo11_output([(32, 16, 16, 8)], [[0.9, 0, 0, 0, 0, 0]])
    det = OnnxDetector(constant_model(out, dynamic=True, extra_metadata={"stride": "32"}))
    frame = np.zeros((40, 128, 3), np.uint8)
    blob, box = det.preprocess(frame)
    assert det.info.dynamic and blob.shape == (1, 3, 32, 64) and box.pad_y == 6
    np.testing.assert_allclose(det(frame).xyxy[0], [48, 12, 80, 28], atol=1e-4)  # ((32±8) / 0.5, (16±4 - 6) / 0.5)
    static = OnnxDetector(constant_model(out))
    assert not static.info.dynamic and static.preprocess(frame)[0].shape == (1, 3, 64, 64)


def test_end_to_end_head_needs_no_nms(constant_model: Callable[..., Path]) -> None:
    out = np.zeros((1, 300, 6), np.float32)
    out[0, 0] = [8, 8, 24, 24, 0.95, 4]
    out[0, 1] = [8, 8, 24, 24, 0.90, 4]  # an end-to-end head already de-duplicated: both kept
    out[0, 2] = [0, 0, 4, 4, 0.1, 1]  # below threshold
    det = OnnxDetector(constant_model(out), DetectorSettings(cross_class_iou=None))
    result = det(np.zeros((64, 64, 3), np.uint8))
    assert det.info.head == "end2end"
    assert result.class_id.tolist() == [4, 4]
    np.testing.assert_allclose(result.xyxy[0], [8, 8, 24, 24])


def test_ultralytics_style_names_dict_is_read(constant_model: Callable[..., Path]) -> None:
    out = yolo11_output([(1, 1, 1, 1)], [[0.0, 0.0]])
    path = constant_model(out, names=None, extra_metadata={"names": "{0: 'can', 1: 'bottle'}"})
    assert OnnxDetector(path).names == ("can", "bottle")


def test_missing_names_metadata_is_a_model_error(constant_model: Callable[..., Path]) -> None:
    with pytest.raises(ModelError, match="no 'names'"):
        OnnxDetector(constant_model(yolo11_output([(1, 1, 1, 1)], [[0.0] * 6]), names=None))


def test_output_shape_that_does_not_fit_the_classes_is_a_model_error(constant_model: Callable[..., Path]) -> None:
    with pytest.raises(ModelError, match="does not match 6 classes"):
        OnnxDetector(constant_model(np.zeros((1, 7, 50), np.float32)))


def test_a_stride_that_is_not_a_positive_integer_is_a_model_error(constant_model: Callable[..., Path]) -> None:
    for bad in ("0", "'32'", "[8, 16]"):
        with pytest.raises(ModelError, match="metadata 'stride'"):
            OnnxDetector(constant_model(yolo11_output([(1, 1, 1, 1)], [[0.0] * 6]), extra_metadata={"stride": bad}))


def test_non_detect_task_is_refused(constant_model: Callable[..., Path]) -> None:
    with pytest.raises(ModelError, match="task is 'segment'"):
        OnnxDetector(constant_model(yolo11_output([(1, 1, 1, 1)], [[0.0] * 6]), task="segment"))


def test_a_file_that_is_not_onnx_says_so(tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_text("this is not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        OnnxDetector(bogus)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="file not found"):
        OnnxDetector(tmp_path / "nope.onnx")


def test_one_item_seen_as_two_classes_becomes_one_detection(constant_model: Callable[..., Path]) -> None:
    out = yolo11_output(
        [(32, 32, 16, 16), (32, 33, 16, 16), (10, 10, 6, 6)], [[0, 0.6, 0, 0, 0, 0], [0, 0, 0.5, 0, 0, 0], [0, 0, 0.5, 0, 0, 0]]
    )
    merged = OnnxDetector(constant_model(out))(np.zeros((64, 64, 3), np.uint8))
    assert merged.class_id.tolist() == [1, 2] and merged.confidence.tolist() == pytest.approx([0.6, 0.5])
    kept = OnnxDetector(constant_model(out), DetectorSettings(cross_class_iou=None))(np.zeros((64, 64, 3), np.uint8))
    assert len(kept) == 3


def test_boxes_are_clipped_to_the_frame(constant_model: Callable[..., Path]) -> None:
    out = yolo11_output([(2, 2, 20, 20)], [[0.9, 0, 0, 0, 0, 0]])
    (box,) = OnnxDetector(constant_model(out))(np.zeros((64, 64, 3), np.uint8)).xyxy
    assert box.min() >= 0 and box.max() <= 64
