"""Letterbox, IoU and class-aware NMS."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vision.geometry import box_iou, box_overlap_of_first, letterbox, nms


def brute_force_nms(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, thr: float, cross: float | None = None) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        ok = True
        for k in kept:
            a, b = xyxy[i], xyxy[k]
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = iw * ih
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            iou = inter / union if union > 0 else 0.0
            if (classes[k] == classes[i] and iou > thr) or (cross is not None and iou > cross):
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


@st.composite
def box_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 25))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.permutation(np.linspace(0.05, 1.0, n)).astype(np.float32) if n else np.zeros(0, np.float32)
    classes = rng.integers(0, 3, n).astype(np.int64)
    return boxes, scores, classes


@settings(max_examples=200, deadline=None)
@given(box_sets(), st.sampled_from([0.3, 0.5, 0.7]))
def test_nms_matches_brute_force_reference(data: tuple[np.ndarray, np.ndarray, np.ndarray], thr: float) -> None:
    boxes, scores, classes = data
    assert nms(boxes, scores, classes, thr).tolist() == brute_force_nms(boxes, scores, classes, thr)


@settings(max_examples=200, deadline=None)
@given(box_sets(), st.sampled_from([0.3, 0.5]), st.sampled_from([0.4, 0.7, 0.9]))
def test_nms_with_cross_class_threshold_matches_brute_force_reference(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], thr: float, cross: float
) -> None:
    boxes, scores, classes = data
    assert nms(boxes, scores, classes, thr, cross).tolist() == brute_force_nms(boxes, scores, classes, thr, cross)


def test_letterbox_with_stride_pads_only_to_the_next_multiple() -> None:
    boxed, box = letterbox(np.zeros((360, 640, 3), np.uint8), (320, 320), stride=32)
    assert boxed.shape == (192, 320, 3) and box.ratio == 0.5 and box.pad_x == 0 and box.pad_y == 6
    boxed, _ = letterbox(np.zeros((360, 480, 3), np.uint8), (320, 320), stride=32)
    assert boxed.shape == (256, 320, 3)


def test_nms_never_suppresses_across_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    assert sorted(nms(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 1]), 0.5).tolist()) == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8], np.float32), np.array([1, 1]), 0.5).tolist() == [0]


@settings(max_examples=100, deadline=None)
@given(st.integers(20, 900), st.integers(20, 900), st.sampled_from([(320, 320), (256, 416), (640, 640)]))
def test_letterbox_round_trip_maps_boxes_back_to_frame_pixels(w: int, h: int, size: tuple[int, int]) -> None:
    frame = np.zeros((h, w, 3), np.uint8)
    boxed, box = letterbox(frame, size)
    assert boxed.shape == (size[0], size[1], 3)
    xyxy = np.array([[0.1 * w, 0.2 * h, 0.7 * w, 0.9 * h]], np.float32)
    back = box.to_frame(box.to_input(xyxy), w, h)
    np.testing.assert_allclose(back, xyxy, atol=1e-3)


def test_letterbox_pads_symmetrically_with_grey() -> None:
    boxed, box = letterbox(np.full((100, 200, 3), 255, np.uint8), (320, 320))
    assert box.ratio == 1.6 and box.pad_x == 0 and box.pad_y == 80
    assert (boxed[:80] == 114).all() and (boxed[80:240] == 255).all() and (boxed[240:] == 114).all()


def test_box_iou_of_identical_disjoint_and_half_overlapping_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 0.0, 1 / 3]], atol=1e-6)


def test_box_overlap_of_first_is_over_the_first_box_s_own_area() -> None:
    small = np.array([[0, 0, 10, 10]], np.float32)
    large = np.array([[5, 0, 25, 20], [0, 0, 10, 10], [30, 30, 40, 40]], np.float32)
    np.testing.assert_allclose(box_overlap_of_first(small, large), [[0.5, 1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(box_overlap_of_first(large, small), [[0.125], [1.0], [0.0]], atol=1e-6)


def iou_of_pair(p: np.ndarray, q: np.ndarray) -> float:
    iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
    ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
    union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - iw * ih
    return float(iw * ih / union) if union > 0 else 0.0


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 6), st.integers(0, 6), st.integers(0, 2**32 - 1))
def test_box_iou_matches_a_pair_by_pair_reference_including_empty_and_zero_area_boxes(n: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)

    def boxes(k: int) -> np.ndarray:
        corner = rng.integers(0, 40, (k, 2))
        size = rng.integers(0, 20, (k, 2)) * (rng.random((k, 1)) > 0.2)  # some boxes of zero area
        return np.concatenate([corner, corner + size], axis=1)

    a, b = boxes(n), boxes(m)  # integer boxes: box_iou must not compute in place on them
    got = box_iou(a, b)
    assert got.shape == (n, m) and got.dtype == np.float32
    want = np.array([[iou_of_pair(p.astype(float), q.astype(float)) for q in b] for p in a]).reshape(n, m)
    np.testing.assert_allclose(got, want, atol=1e-6)
