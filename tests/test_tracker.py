"""Tracker on synthetic trajectories: identity through crossings and occlusion gaps, class votes, bounds."""

from __future__ import annotations

import itertools

import numpy as np
from scenes import Mover, frame_detections

from vision import Detections, Tracker, TrackerSettings


def run(movers: list[Mover], frames: int, tracker: Tracker | None = None) -> dict[int, list[int]]:
    """Track ``frames`` frames; returns, per mover, the sequence of track ids it was given."""
    tracker = tracker or Tracker()
    ids: dict[int, list[int]] = {k: [] for k in range(len(movers))}
    for f in range(frames):
        dets, who = frame_detections(movers, f)
        out = tracker.update(dets)
        assert out.tracker_id is not None
        for box, tid in zip(out.xyxy, out.tracker_id, strict=True):
            k = who[int(np.argmin(np.abs(dets.xyxy - box).sum(axis=1)))]  # the tracker returns input boxes
            ids[k].append(int(tid))
    return ids


def id_switches(ids: dict[int, list[int]]) -> int:
    return sum(sum(1 for a, b in itertools.pairwise(seq) if a != b) for seq in ids.values())


def test_one_object_keeps_one_id() -> None:
    ids = run([Mover((0, 100), (8, 0))], 60)
    assert len(set(ids[0])) == 1 and len(ids[0]) == 59  # confirmed from its second frame


def test_two_objects_crossing_paths_keep_their_ids() -> None:
    # Paths cross at frame ~30 with the boxes overlapping by half; classes differ.
    movers = [Mover((0, 100), (6, 3), class_id=0), Mover((20, 280), (6, -3), class_id=1)]
    ids = run(movers, 60)
    assert id_switches(ids) == 0
    assert set(ids[0]).isdisjoint(ids[1])


def test_occlusion_gap_shorter_than_the_lost_buffer_keeps_the_id() -> None:
    ids = run([Mover((0, 100), (6, 0), hidden=tuple(range(20, 32)))], 60, Tracker(TrackerSettings(lost_buffer=30)))
    assert len(set(ids[0])) == 1


def test_occlusion_gap_longer_than_the_lost_buffer_gives_a_new_id() -> None:
    ids = run([Mover((0, 100), (6, 0), hidden=tuple(range(20, 40)))], 60, Tracker(TrackerSettings(lost_buffer=5)))
    assert len(set(ids[0])) == 2


def test_class_is_the_majority_vote_over_the_track_life() -> None:
    tracker = Tracker()
    mover = Mover((0, 100), (5, 0))
    out = None
    for f in range(12):
        dets, _ = frame_detections([mover], f, class_of={0: 3 if f % 4 else 1})  # mostly 3, sometimes 1
        out = tracker.update(dets)
    assert out is not None and out.class_id.tolist() == [3]


def test_low_confidence_detections_continue_a_track_but_never_start_one() -> None:
    tracker = Tracker()
    for f in range(5):
        dets, _ = frame_detections([Mover((0, 100), (5, 0))], f)
        tracker.update(dets)
    weak = Mover((25, 100), (5, 0), confidence=0.2, first=5)
    for f in range(5, 10):
        dets, _ = frame_detections([weak], f)
        out = tracker.update(dets)
        assert len(out) == 1 and out.tracker_id is not None and out.tracker_id.tolist() == [1]
    lonely = Tracker()
    for f in range(5):
        dets, _ = frame_detections([Mover((0, 100), (5, 0), confidence=0.2)], f)
        assert len(lonely.update(dets)) == 0


def test_state_is_bounded_and_reset_forgets_everything() -> None:
    tracker = Tracker(TrackerSettings(lost_buffer=3))
    for f in range(50):
        dets, _ = frame_detections([Mover((f * 50.0 % 1000, 100 + f), (0, 0), first=f, last=f + 1)], f)
        tracker.update(dets)
    assert len(tracker.tracks) <= 2 * 2 + 1
    tracker.reset()
    assert tracker.tracks == [] and tracker.frame_index == 0
    assert len(tracker.update(Detections.empty())) == 0


def test_same_class_objects_crossing_at_an_angle_keep_their_ids() -> None:
    movers = [Mover((0, 100), (6, 3)), Mover((30, 280), (6, -3)), Mover((0, 400), (7, 0))]
    assert id_switches(run(movers, 70)) == 0


def test_a_fast_item_moving_two_box_sizes_per_frame_keeps_one_track() -> None:
    ids = run([Mover((0, 100), (80, 0), size=40)], 12)
    assert len(ids[0]) >= 10 and len(set(ids[0])) == 1


def test_an_item_leaving_the_frame_does_not_hand_its_track_to_one_coming_in_behind_it() -> None:
    """On a belt moving left, item A leaves at the left edge; two frames later item B appears 250 px behind
    where A was going, within the fast-mover gate: B is a new item with its own track, not A jumping back."""
    movers = [Mover((200, 100), (-8, 0), size=60, last=20), Mover((274, 100), (-8, 0), size=60, first=22)]
    ids = run(movers, 30)
    assert ids[0] and ids[1] and not set(ids[0]) & set(ids[1])


def test_two_fast_items_side_by_side_are_not_swapped() -> None:
    movers = [Mover((0, 100), (70, 0), size=40, class_id=0), Mover((0, 300), (70, 0), size=40, class_id=1)]
    assert id_switches(run(movers, 12)) == 0
