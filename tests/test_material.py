"""The second stage: ``vision.Classifier`` refuses what is not a classifier, ``crop_square`` cuts the crop
training uses, the ``MaterialVoter`` picks good crops within its budget and votes per track, and the
two-stage pipeline counts by the classifier's material."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from blob_model import NAMES, write_blob_model, write_blob_video
from colour_classifier import write_colour_classifier
from hypothesis import given, settings
from hypothesis import strategies as st

from device.count import build_pipeline, count_video
from device.count_config import CountSettings
from vision import Classifier, Detections, MaterialSettings, MaterialVoter, ModelError, crop_square
from vision.picture import Picture


def red_and_blue_frame() -> np.ndarray:
    frame = np.full((120, 200, 3), 20, np.uint8)
    cv2.rectangle(frame, (20, 40), (60, 80), (40, 40, 255), -1)  # red
    cv2.rectangle(frame, (120, 40), (160, 80), (255, 80, 40), -1)  # blue
    return frame


def tracked(boxes: list[tuple[float, float, float, float]], ids: list[int]) -> Detections:
    n = len(boxes)
    return Detections(np.asarray(boxes, np.float32).reshape(n, 4), np.ones(n, np.float32), np.zeros(n, np.int64), np.asarray(ids, np.int64))


def test_classifier_names_each_crop_in_one_batched_call(tmp_path: Path) -> None:
    classifier = Classifier(write_colour_classifier(tmp_path / "c.onnx"))
    p = classifier.classify_boxes(red_and_blue_frame(), np.array([[20, 40, 60, 80], [120, 40, 160, 80]], np.float32))
    assert p.shape == (2, len(NAMES)) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert [NAMES[k] for k in p.argmax(axis=1)] == ["cardboard", "glass"]
    assert classifier.info.model_id.startswith("colour-test@sha256:")
    # between the detector's runs its idle threads wait without spinning on the detector's cores
    assert classifier.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_detector_given_as_classifier_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="this is a detector: pass it as --model"):
        Classifier(write_blob_model(tmp_path / "d.onnx"))


def test_a_corrupt_or_missing_classifier_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        Classifier(bad)
    with pytest.raises(ModelError, match="file not found"):
        Classifier(tmp_path / "absent.onnx")


def test_a_classifier_whose_classes_are_not_the_detectors_is_refused(tmp_path: Path) -> None:
    other = write_colour_classifier(tmp_path / "c.onnx", names=("a", "b", "c", "d", "e", "f"))
    with pytest.raises(ModelError, match="do not match the detector's"):
        build_pipeline(write_blob_model(tmp_path / "d.onnx"), CountSettings(), other)


def test_a_classifier_given_as_detector_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        build_pipeline(write_colour_classifier(tmp_path / "c.onnx"), CountSettings())


@settings(max_examples=60, deadline=None)
@given(
    x1=st.floats(-50, 250),
    y1=st.floats(-50, 150),
    w=st.floats(1, 300),
    h=st.floats(1, 300),
    size=st.sampled_from([16, 32, 57]),
)
def test_crop_square_always_gives_the_asked_size(x1: float, y1: float, w: float, h: float, size: int) -> None:
    crop = crop_square(red_and_blue_frame(), (x1, y1, x1 + w, y1 + h), size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8


def test_crop_square_keeps_the_item_centred_and_whole() -> None:
    crop = crop_square(red_and_blue_frame(), (20, 40, 60, 80), 48, margin=0.1)
    red = (crop[..., 2] > 200) & (crop[..., 0] < 100)
    ys, xs = np.nonzero(red)
    assert abs(xs.mean() - 23.5) < 1.5 and abs(ys.mean() - 23.5) < 1.5
    assert red.sum() / red.size == pytest.approx(1 / 1.2**2, rel=0.1)


def test_voter_skips_boxes_cut_by_the_edge_small_or_overlapped(tmp_path: Path) -> None:
    voter = MaterialVoter(Classifier(write_colour_classifier(tmp_path / "c.onnx")), MaterialSettings(min_side=20, max_overlap=0.2))
    dets = tracked([(0, 40, 30, 80), (70, 40, 80, 50), (100, 40, 140, 80), (105, 40, 145, 80), (150, 10, 190, 50)], [1, 2, 3, 4, 5])
    rows = voter.eligible(dets, 200, 120, 1)
    assert rows.tolist() == [4]  # edge, too small, two overlapping: only the last one


def test_voter_spends_at_most_its_budget_per_frame_and_per_track(tmp_path: Path) -> None:
    settings_ = MaterialSettings(crops_per_frame=2, crops_per_track=2, min_gap_frames=1, min_side=8)
    voter = MaterialVoter(Classifier(write_colour_classifier(tmp_path / "c.onnx")), settings_)
    frame = red_and_blue_frame()
    dets = tracked([(10, 5, 30, 25), (50, 5, 70, 25), (90, 5, 110, 25), (130, 5, 150, 25)], [1, 2, 3, 4])
    seen = [len(voter.update(frame, dets, k).classified) for k in range(1, 6)]
    assert seen == [2, 2, 2, 2, 0]  # 4 tracks x 2 crops, 2 a frame, then nothing left to learn
    assert voter.crops_run == 8


def test_a_track_sure_of_its_material_takes_no_more_crops(tmp_path: Path) -> None:
    """The clear red item is classified once at ``sure_enough`` 0.8; with 1.0 it takes all its crops."""
    frame = red_and_blue_frame()
    dets = tracked([(20, 40, 60, 80)], [1])
    for sure_enough, crops in ((0.8, 1), (1.0, 3)):
        voter = MaterialVoter(
            Classifier(write_colour_classifier(tmp_path / "c.onnx")), MaterialSettings(min_gap_frames=1, sure_enough=sure_enough)
        )
        for k in range(1, 6):
            voter.update(frame, dets, k)
        assert voter.crops_run == crops and voter.votes[1].total.max() / voter.votes[1].crops > 0.9


def test_the_track_material_is_the_vote_over_its_crops(tmp_path: Path) -> None:
    voter = MaterialVoter(Classifier(write_colour_classifier(tmp_path / "c.onnx")), MaterialSettings(min_gap_frames=1))
    frame = red_and_blue_frame()
    out = voter.update(frame, tracked([(20, 40, 60, 80), (120, 40, 160, 80)], [7, 8]), 1)
    assert [NAMES[c] for c in out.detections.class_id] == ["cardboard", "glass"]
    assert all(c > 0.9 for c in out.detections.confidence)


def test_an_item_counted_before_any_good_crop_is_classified_then(tmp_path: Path) -> None:
    voter = MaterialVoter(Classifier(write_colour_classifier(tmp_path / "c.onnx")), MaterialSettings(min_side=1000))
    out = voter.update(red_and_blue_frame(), tracked([(120, 40, 160, 80)], [3]), 1)
    assert out.classified == []  # no box is large enough for a crop by the rules
    class_id, confidence = out.resolve(0)
    assert NAMES[class_id] == "glass" and confidence > 0.9 and len(out.classified) == 1


def test_votes_of_lost_tracks_are_forgotten(tmp_path: Path) -> None:
    voter = MaterialVoter(Classifier(write_colour_classifier(tmp_path / "c.onnx")), MaterialSettings(forget_after=10))
    frame = red_and_blue_frame()
    voter.update(frame, tracked([(20, 40, 60, 80)], [1]), 1)
    voter.update(frame, tracked([], []), 30)
    assert voter.votes == {}


def test_two_stage_pipeline_counts_by_the_classifiers_material(tmp_path: Path) -> None:
    video = tmp_path / "v.avi"
    truth = write_blob_video(video, ["red", "blue", "red"])
    model = write_blob_model(tmp_path / "d.onnx")
    settings_ = CountSettings(line=(0.5, 1.0, 0.5, 0.0))
    agreeing = count_video(video, model, settings_, progress=False, classifier=write_colour_classifier(tmp_path / "c.onnx"))
    assert agreeing.counts == truth["counts"]
    flipped = count_video(video, model, settings_, progress=False, classifier=write_colour_classifier(tmp_path / "f.onnx", flip=True))
    assert flipped.counts == {"in": {"cardboard": 1, "glass": 2}, "out": {}}  # the classifier, not the detector, decides


def test_a_tracks_later_crops_are_seen_turned(tmp_path: Path) -> None:
    """The k-th crop of a track is turned by ``turns[k]`` quarter turns (cycled) before it is classified."""
    classifier = Classifier(write_colour_classifier(tmp_path / "c.onnx"))
    seen: list[np.ndarray] = []
    predict = classifier.predict

    def recording(crops: np.ndarray) -> np.ndarray:
        seen.extend(crops)
        return predict(crops)

    classifier.predict = recording  # type: ignore[method-assign]
    frame = red_and_blue_frame()
    frame[40:60, 20:60] = (0, 255, 0)  # the red item's top half is green: a crop that shows its turn
    upright = crop_square(frame, (20, 40, 60, 80), classifier.imgsz)
    voter = MaterialVoter(classifier, MaterialSettings(min_gap_frames=1, sure_enough=1.0, crops_per_track=4, turns=(0, 1, 2)))
    for k in range(1, 6):
        voter.update(frame, tracked([(20, 40, 60, 80)], [1]), k)
    assert len(seen) == 4
    for crop, turns in zip(seen, (0, 1, 2, 0), strict=True):
        assert np.array_equal(crop, np.rot90(upright, turns))
    seen.clear()
    out = MaterialVoter(classifier, MaterialSettings(turns=(3,))).update(frame, tracked([(0, 0, 5, 5)], [2]), 1)  # too small a crop
    out.resolve(0)  # classified on the spot: its first crop, turned as the first crop is
    assert len(seen) == 1 and np.array_equal(seen[0], np.rot90(crop_square(frame, (0, 0, 5, 5), classifier.imgsz), 3))


def test_a_picture_is_made_only_when_a_crop_is_taken_and_then_once(tmp_path: Path) -> None:
    """A belt turned upright hands the voter a ``Picture``: a frame with nothing to classify never makes it."""
    voter = MaterialVoter(Classifier(write_colour_classifier(tmp_path / "c.onnx")), MaterialSettings(min_gap_frames=1, sure_enough=1.0))
    made = []

    def picture() -> Picture:
        return Picture(200, 120, lambda: made.append(1) or red_and_blue_frame())  # type: ignore[func-returns-value]

    out = voter.update(picture(), tracked([(0, 40, 30, 80)], [1]), 1)  # cut by the edge: no crop
    assert made == [] and out.classified == [] and out.frame is not None and not out.frame.made
    out = voter.update(picture(), tracked([(20, 40, 60, 80), (120, 40, 160, 80)], [2, 3]), 2)
    assert made == [1] and len(out.classified) == 2  # two crops, one picture
    assert NAMES[out.resolve(0)[0]] == "cardboard" and made == [1]
    lazy = picture()
    out = MaterialVoter(Classifier(write_colour_classifier(tmp_path / "c.onnx")), MaterialSettings(min_side=1000)).update(
        lazy, tracked([(120, 40, 160, 80)], [4]), 1
    )
    assert not lazy.made and NAMES[out.resolve(0)[0]] == "glass" and lazy.made  # made when a count needs the material


def test_a_picture_that_is_not_the_size_it_promised_is_refused() -> None:
    with pytest.raises(ValueError, match="promised"):
        Picture(100, 50, red_and_blue_frame).pixels()
    frame = red_and_blue_frame()
    assert Picture.of(frame).made and Picture.of(frame).pixels() is frame
