"""The COCO mAP wrapper: known answers for perfect, missing, wrong-class and shifted predictions."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import coco_map, read_labels

pytest.importorskip("pycocotools")


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, np.float32).reshape(-1, 4)


GT = [(0, 0, np.array([0, 1]), boxes((10, 10, 50, 50), (60, 60, 100, 100))), (1, 0, np.array([1]), boxes((0, 0, 40, 40)))]
SIZES = {0: (128, 128), 1: (128, 128)}


def test_perfect_predictions_score_one() -> None:
    preds = [(i, c, b, np.full(len(c), 0.9, np.float32)) for i, _, c, b in GT]
    m = coco_map(GT, preds, SIZES, 2)
    assert m["map50"] == pytest.approx(1.0) and m["map50_95"] == pytest.approx(1.0)


def test_wrong_class_scores_zero_for_both_classes_involved() -> None:
    preds = [(i, 1 - c, b, np.full(len(c), 0.9, np.float32)) for i, _, c, b in GT]
    assert coco_map(GT, preds, SIZES, 2)["map50"] == pytest.approx(0.0)


def test_a_box_shifted_to_iou_0_6_counts_at_50_but_not_at_75() -> None:
    shifted = [(0, np.array([0]), boxes((20, 10, 60, 50)), np.array([0.9], np.float32))]  # IoU 0.6 with the class-0 box
    gt = [(*GT[0][:2], np.array([0]), GT[0][3][:1])]
    m = coco_map(gt, shifted, {0: (128, 128)}, 1)
    assert m["map50"] == pytest.approx(1.0)
    assert m["map50_95"] == pytest.approx(0.3, abs=1e-6)  # matched at IoU 0.50, 0.55, 0.60 of ten thresholds


def test_yolo_label_file_is_read_in_pixels(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "a.txt"
    path.write_text("2 0.5 0.5 0.25 0.5\n")
    classes, xyxy = read_labels(path, 200, 100)
    assert classes.tolist() == [2]
    np.testing.assert_allclose(xyxy, [[75, 25, 125, 75]])


def test_recall_and_boxes_per_item_at_the_operating_point_match_a_hand_count() -> None:
    from training.evaluate import operating_point

    truth = [(0, 0, np.zeros(2, np.int64), np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32))]
    found = [
        (
            0,
            np.zeros(4, np.int64),
            np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], np.float32),
            np.array([0.9, 0.8, 0.2, 0.6], np.float32),  # the second item's box is under the threshold
        )
    ]
    recall, boxes = operating_point(truth, found, confidence=0.25)
    assert recall == 0.5  # the first item, once (its second box is a duplicate)
    assert boxes == 1.5  # three boxes at 0.25 or above for two items


def test_compare_names_the_model_better_on_every_figure_or_says_which_wins_what() -> None:
    from training.compare import verdict

    def result(ap: float, twice: int, false_counts: int | None) -> dict[str, object]:
        counts = {"mean_count_error": 0.5, "items": {"twice": twice, "missed": 0, "no_item": 0, "wrong_direction": 0}}
        empty = None if false_counts is None else {"false_counts": false_counts}
        return {"map50": 0.4, "agnostic_ap50": ap, "item_recall": 0.8, "counts": counts, "empty_belt": empty}

    assert verdict(result(0.90, 1, 3), result(0.90, 1, 3))[0] == "neither"
    better, figures = verdict(result(0.90, 1, 3), result(0.93, 1, 0))
    assert better == "b" and figures["agnostic AP50"] == "b" and figures["items counted twice"] == "same"
    better, figures = verdict(result(0.90, 1, 3), result(0.93, 4, None))  # no empty-belt footage: that figure is left out
    assert better == "mixed: a better on items counted twice; b better on agnostic AP50"
    assert "false counts on empty belt" not in figures
