"""LineCounter and ZoneCounter: direction convention, every orientation, hysteresis, fast items,
id switches at the line, class votes, and the property that counts never exceed crossings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vision import Detections, LineCounter, LineError, LineSpec, Tracker, ZoneCounter

NAMES = ("cardboard", "glass", "metal")
W, H = 640, 480


def tracked(points: list[tuple[int, float, float]], class_id: int = 0, size: float = 30.0) -> Detections:
    """Tracked detections from (track id, cx, cy) in pixels."""
    if not points:
        return Detections.empty().with_tracks(np.zeros(0, np.int64))
    xyxy = np.array([[x - size / 2, y - size / 2, x + size / 2, y + size / 2] for _, x, y in points], np.float32)
    ids = np.array([t for t, _, _ in points], np.int64)
    return Detections(xyxy, np.full(len(points), 0.9, np.float32), np.full(len(points), class_id, np.int64), ids)


def run_path(counter: LineCounter | ZoneCounter, path: list[tuple[float, float]], track_id: int = 1) -> list[str]:
    events = []
    for f, (x, y) in enumerate(path, start=1):
        events += [e.direction for e in counter.update(tracked([(track_id, x, y)]), W, H, f)]
    return events


def test_left_to_right_line_counts_top_to_bottom_motion_as_in() -> None:
    counter = LineCounter(LineSpec(0.0, 0.5, 1.0, 0.5), NAMES)
    assert run_path(counter, [(320, y) for y in range(100, 400, 20)]) == ["in"]
    counter = LineCounter(LineSpec(0.0, 0.5, 1.0, 0.5), NAMES)
    assert run_path(counter, [(320, y) for y in range(400, 100, -20)]) == ["out"]
    assert counter.totals == {("out", "cardboard"): 1}


@pytest.mark.parametrize("angle", range(0, 360, 15))
def test_every_line_orientation_counts_a_crossing_once_with_the_contract_direction(angle: int) -> None:
    a = math.radians(angle)
    dx, dy = 0.3 * math.cos(a), 0.3 * math.sin(a) * W / H
    spec = LineSpec(0.5 - dx, 0.5 - dy, 0.5 + dx, 0.5 + dy)
    normal = np.array([-math.sin(a), math.cos(a)])  # points to the side where the contract's cross product is > 0
    path = [(320 + normal[0] * t, 240 + normal[1] * t) for t in range(-120, 121, 10)]
    assert run_path(LineCounter(spec, NAMES), path) == ["in"]
    assert run_path(LineCounter(spec, NAMES), path[::-1]) == ["out"]


def test_jitter_on_the_line_counts_once() -> None:
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES, hysteresis=0.01)
    path = [(320, 200.0), (320, 230.0)] + [(320, 240 + (3 if i % 2 else -3)) for i in range(30)] + [(320, 280.0), (320, 300.0)]
    assert run_path(counter, path) == ["in"]


def test_a_box_on_something_that_stays_put_never_counts_however_its_centre_wanders() -> None:
    # a rail or the floor beside the belt boxed as a tall item: its extent changes as the belt passes, so its
    # centre wanders across the line by more than the dead band, never by a quarter of its size
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    rng = np.random.default_rng(0)
    events = []
    for f in range(1, 300):
        y = 240 + float(rng.uniform(-25, 25))
        events += counter.update(tracked([(1, 40, y)], size=240.0), W, H, f)
    assert events == []


def box(track_id: int, x1: float, y1: float, x2: float, y2: float) -> Detections:
    return Detections(np.array([[x1, y1, x2, y2]], np.float32), np.full(1, 0.9, np.float32), np.zeros(1, np.int64), np.array([track_id]))


def test_a_box_on_the_belts_frame_that_grows_until_its_centre_crosses_never_counts() -> None:
    # the belt's frame beside a cleated belt boxed from a fixed edge: more of it is boxed frame by frame, so its
    # centre travels across the line by more than a quarter of its size while its far edge never moves
    def run(counter: LineCounter) -> list[str]:
        events = []
        for f in range(1, 60):
            events += [e.direction for e in counter.update(box(1, 20, 200, 60, 220 + 4 * f), W, H, f)]
        return events

    assert run(LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)) == []
    assert run(LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES, trailing_travel=False)) == ["in"]  # judged by its centre alone


def test_a_box_standing_still_that_leaps_across_the_line_for_a_frame_never_counts() -> None:
    # the belt's frame at the picture's edge, boxed from its top for 40 frames, then from its bottom for one
    def run(counter: LineCounter, jitter: float) -> list[str]:
        events = []
        for f in range(1, 70):
            y = 290.0 if f == 41 else 180 + jitter * (f % 3 - 1)
            events += [e.direction for e in counter.update(box(1, 540, y - 95, 640, y + 95), W, H, f)]
        return events

    for jitter in (0.0, 1.0, 2.0):
        assert run(LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES), jitter) == []
    assert run(LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES, sudden_step=None), 0.0) == ["in"]  # what the leap would count


def test_an_item_that_stood_still_and_rides_on_counts_once() -> None:
    # the belt stopped, then starts again: the item speeds up over a few frames and crosses
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    y, events = 150.0, []
    for f in range(1, 80):
        y += min(max(f - 30, 0), 8)
        events += [e.direction for e in counter.update(box(1, 300, y - 30, 360, y + 30), W, H, f)]
    assert events == ["in"]


def test_an_item_growing_into_view_as_it_rides_counts_once() -> None:
    # an item boxed in part as it comes out from under a hood, then whole: both its edges move on
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    events = []
    for f in range(1, 80):
        y2 = 100 + 5 * f
        y1 = max(100.0, y2 - 90 - min(f, 30))  # its boxed part grows from 90 to 120 px long
        events += [e.direction for e in counter.update(box(1, 300, y1, 360, y2), W, H, f)]
    assert events == ["in"]


def test_an_item_first_seen_at_the_line_counts_once_it_has_moved_on() -> None:
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    path = [(320, 230.0 + 4 * i) for i in range(20)]  # first seen 10 px before the line, 4 px a frame, 120 px large
    events = []
    for f, (x, y) in enumerate(path, start=1):
        events += [(f, e.direction) for e in counter.update(tracked([(1, x, y)], size=120.0), W, H, f)]
    # past the dead band (8 px) at frame 6 having travelled 20 px: held until it has moved on a quarter of its size
    assert events == [(14, "in")]


def test_a_track_going_back_and_forth_across_the_line_counts_once() -> None:
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    path = [(320, 200.0), (320, 280.0), (320, 200.0), (320, 280.0), (320, 200.0)]
    assert run_path(counter, path) == ["in"]


def test_a_fast_item_that_jumps_over_the_line_between_frames_counts() -> None:
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    assert run_path(counter, [(320, 40.0), (320, 460.0)]) == ["in"]


def test_motion_that_passes_beside_the_finite_line_does_not_count() -> None:
    counter = LineCounter(LineSpec(0.0, 0.5, 0.4, 0.5), NAMES)
    assert run_path(counter, [(500, y) for y in range(100, 400, 20)]) == []


def test_id_switch_at_the_line_does_not_count_twice() -> None:
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    events = []
    for f, y in enumerate(range(150, 300, 15), start=1):  # track 1 crosses at y=240
        events += counter.update(tracked([(1, 320, y)]), W, H, f)
    # track 1 is lost; the same item comes back as track 2 just before the line and crosses again
    for f, y in enumerate(range(232, 340, 15), start=20):
        events += counter.update(tracked([(2, 320, y)]), W, H, f)
    assert [e.direction for e in events] == ["in"]


def test_a_counted_track_keeps_its_state_when_a_new_id_appears_beside_it_first_in_the_frame() -> None:
    """Track 1 is counted, missed for a frame, and comes back listed after a new id 6 that appeared where it
    was going: 6 must not inherit 1's state (1 is not lost), so 1 going back and forth is not counted again."""
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    events = []
    for f, y in enumerate(range(150, 315, 15), start=1):  # track 1 crosses at y=240, last seen at y=300 (frame 11)
        events += counter.update(tracked([(1, 320, y)]), W, H, f)
    events += counter.update(tracked([(6, 320, 330), (1, 320, 328)]), W, H, 13)
    for f, y in enumerate([280, 200, 180, 260, 300], start=14):
        events += counter.update(tracked([(1, 320, y)]), W, H, f)
    assert [(e.direction, e.track_id) for e in events] == [("in", 1)]


def test_id_switch_before_the_line_still_counts_the_crossing_once() -> None:
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    events = []
    for f, y in enumerate(range(100, 200, 15), start=1):  # track 1 never reaches the line
        events += counter.update(tracked([(1, 320, y)]), W, H, f)
    for f, y in enumerate(range(260, 400, 15), start=9):  # reappears as track 2 already past it
        events += counter.update(tracked([(2, 320, y)]), W, H, f)
    assert [e.direction for e in events] == ["in"]


def test_a_different_item_far_away_is_not_taken_for_an_id_switch() -> None:
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    events = []
    for f, y in enumerate(range(150, 300, 15), start=1):
        events += counter.update(tracked([(1, 100, y)]), W, H, f)
    for f, y in enumerate(range(150, 300, 15), start=20):
        events += counter.update(tracked([(2, 540, y)]), W, H, f)
    assert [e.track_id for e in events] == [1, 2]


def test_a_new_item_behind_a_counted_one_missed_for_a_frame_is_counted_itself() -> None:
    """Track 1 (a 100-px item riding down 10 px a frame) is counted and missed for a frame; in that frame a new
    item, track 2, appears behind it on the belt — 100 px behind where track 1 was last seen, within reach of an
    id switch (0.6 widths across, 1.1 heights back from where it was predicted) — and goes on to cross. Track 1
    cannot have gone back that far: it is another item, counted itself."""
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    events = []
    for f, y in enumerate(range(100, 310, 10), start=1):  # crosses y=240, last seen at y=300 (frame 21)
        events += counter.update(tracked([(1, 200, y)], size=100.0), W, H, f)
    for f, y in enumerate(range(200, 330, 10), start=22):  # predicted at (200, 310) in frame 22
        events += counter.update(tracked([(2, 260, y)], size=100.0), W, H, f)
    assert [(e.direction, e.track_id) for e in events] == [("in", 1), ("in", 2)]


def test_a_new_item_wholly_before_the_line_takes_no_counted_state_from_a_track_gone_back() -> None:
    """Track 1 (60 px) rides down across the line and is counted; then its box drifts back up (boxed on with the
    junk at the picture's edge) and is lost. Ten frames on, the next item enters well before the line, within reach
    of an id switch from where track 1 was predicted to be. An item counted past the line is not a box wholly
    before it: track 2 is counted itself."""
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    events = []
    path = [*range(100, 310, 10), 290, 280]  # crosses y=240, back to y=280 (frame 23), predicted at y=180 in frame 33
    for f, y in enumerate(path, start=1):
        events += counter.update(tracked([(1, 320, y)], size=60.0), W, H, f)
    for f, y in enumerate(range(120, 330, 10), start=33):
        events += counter.update(tracked([(2, 320, y)], size=60.0), W, H, f)
    assert [(e.direction, e.track_id) for e in events] == [("in", 1), ("in", 2)]


def test_an_id_switch_whose_box_still_straddles_the_line_keeps_the_counted_state() -> None:
    """Track 1 (60 px) is counted and lost just past the line; the same item comes back as track 2 boxed with its
    centre just before the line (a part of it, say), the box still across the line, and rides on: not counted again."""
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    events = []
    for f, y in enumerate(range(150, 280, 15), start=1):  # crosses y=240, last seen at y=270 (frame 9)
        events += counter.update(tracked([(1, 320, y)], size=60.0), W, H, f)
    for f, y in enumerate(range(222, 340, 15), start=11):  # 18 px before the line, its box 192..252
        events += counter.update(tracked([(2, 320, y)], size=60.0), W, H, f)
    assert [(e.direction, e.track_id) for e in events] == [("in", 1)]


def test_a_crossing_held_for_a_lost_tracks_own_motion_is_not_confirmed_by_a_new_id() -> None:
    """A box on the belt's frame (track 7) stands still past the line, leaps across it for a frame — held, not
    counted — and is lost; an item riding down the belt appears just beyond, within reach of an id switch, and
    takes over its state. Its position is not track 7 moving on: the leap is not counted `out`. The item is
    counted `in` when it crosses the line itself."""
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    events = []
    for f in range(1, 11):
        events += counter.update(tracked([(7, 500, 300.0)], size=200.0), W, H, f)
    events += counter.update(tracked([(7, 500, 200.0)], size=200.0), W, H, 11)  # the leap: held
    for f, y in enumerate(range(150, 360, 10), start=14):
        events += counter.update(tracked([(8, 500, y)], size=200.0), W, H, f)
    assert [(e.direction, e.track_id) for e in events] == [("in", 8)]


def test_a_box_well_apart_from_where_a_lost_track_was_is_not_taken_for_it() -> None:
    """A box that stood past the line (track 1, 150 x 140 px) is lost; eight frames later an item enters at the top of
    the picture (track 2, 130 x 55 px, clipped by the edge), 190 px above where track 1 was — within 1.4 heights of
    the larger box, but 90 px clear of it. It is not track 1 come back, whose place past the line it would take (its
    crossing then held until it rode on past track 1's): it is counted `in` as it rides across, just before it leaves."""
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)

    def box(track_id: int, x: float, y: float, w: float, h: float) -> Detections:
        xyxy = np.array([[x - w / 2, y - h / 2, x + w / 2, y + h / 2]], np.float32)
        return Detections(xyxy, np.full(1, 0.9, np.float32), np.zeros(1, np.int64), np.array([track_id], np.int64))

    events = []
    for f in range(1, 11):
        events += counter.update(box(1, 200, 300, 150, 140), W, H, f)
    for f, y in enumerate(range(110, 280, 10), start=18):
        events += counter.update(box(2, 220, y, 130, 55), W, H, f)
    assert [(e.direction, e.track_id) for e in events] == [("in", 2)]


def test_a_crossing_held_pending_lapses_after_its_window_even_for_a_track_unseen_meanwhile() -> None:
    """A track crosses with a box twice its size (held pending), is seen once more without moving on, and comes back
    35 frames later, past the line: the 30 frames in which its own motion could have confirmed the crossing are over,
    whether or not it was seen in them, so it is not counted."""
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5), NAMES)
    events = []
    for f in range(1, 10):
        events += counter.update(tracked([(1, 320, 150.0 + 10 * (f - 1))], size=60.0), W, H, f)
    events += counter.update(tracked([(1, 320, 250.0)], size=120.0), W, H, 10)  # the size jump: held
    events += counter.update(tracked([(1, 320, 252.0)], size=120.0), W, H, 11)
    events += counter.update(tracked([(1, 320, 300.0)], size=120.0), W, H, 45)
    assert events == []


def test_a_tall_box_lost_before_the_line_passes_no_state_to_a_box_widths_beyond_it() -> None:
    """A cleat across the belt (40 x 300 px) is boxed as it rides right and lost before a vertical line; a
    box appears on the cleat's row 250 px past where the cleat was predicted to be — within 1.5 of its height,
    but six widths away. It is another thing, not an id switch: nothing is counted."""
    counter = LineCounter(LineSpec(0.5, 1, 0.5, 0), NAMES)

    def cleat(track_id: int, x: float) -> Detections:
        xyxy = np.array([[x - 20, 90, x + 20, 390]], np.float32)
        return Detections(xyxy, np.full(1, 0.9, np.float32), np.zeros(1, np.int64), np.array([track_id], np.int64))

    events = []
    for f, x in enumerate(range(60, 260, 15), start=1):  # lost at x=240, predicted at 285 two frames on
        events += counter.update(cleat(1, x), W, H, f)
    for f, x in enumerate(range(535, 600, 15), start=16):
        events += counter.update(cleat(2, x), W, H, f)
    assert events == []
    counter = LineCounter(LineSpec(0.5, 1, 0.5, 0), NAMES)  # the same cleat found again near where it went: one count
    for f, x in enumerate(range(60, 260, 15), start=1):
        events += counter.update(cleat(1, x), W, H, f)
    for f, x in enumerate(range(300, 420, 15), start=16):
        events += counter.update(cleat(2, x), W, H, f)
    assert [e.track_id for e in events] == [2]


def test_event_carries_class_line_and_track() -> None:
    counter = LineCounter(LineSpec(0, 0.5, 1, 0.5, name="belt-1"), NAMES)
    events = []
    for f, y in enumerate(range(150, 300, 30), start=1):
        events += counter.update(tracked([(7, 320, y)], class_id=2), W, H, f)
    (event,) = events
    assert (event.line, event.class_name, event.track_id, event.direction) == ("belt-1", "metal", 7, "in")


def test_bad_lines_are_refused_with_a_reason() -> None:
    with pytest.raises(LineError, match="0-1"):
        LineSpec.parse("0,0.5,1.5,0.5")
    with pytest.raises(LineError, match="four numbers"):
        LineSpec.parse("0,0.5,1")
    with pytest.raises(LineError, match="same"):
        LineSpec.parse("0.5,0.5,0.5,0.5")


def test_zone_counts_entry_and_exit_once_each() -> None:
    zone = ZoneCounter([(0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)], NAMES)
    assert run_path(zone, [(x, 240.0) for x in range(100, 600, 20)]) == ["in", "out"]


def test_zone_counts_an_item_that_jumps_over_it_between_frames() -> None:
    zone = ZoneCounter([(0.45, 0.0), (0.55, 0.0), (0.55, 1.0), (0.45, 1.0)], NAMES)  # 64 px wide
    assert run_path(zone, [(200.0, 240.0), (440.0, 240.0)]) == ["in", "out"]


def test_zone_counts_an_item_dropped_into_it() -> None:
    zone = ZoneCounter([(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)], NAMES)
    assert run_path(zone, [(320.0, 240.0), (322.0, 250.0)]) == ["in"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.05, 0.95), st.floats(-0.2, 1.2), st.floats(-30, 30), st.floats(2, 25)), min_size=1, max_size=6),
    st.integers(0, 2**31 - 1),
)
def test_counts_never_exceed_the_distinct_objects_that_crossed(objects: list[tuple[float, float, float, float]], seed: int) -> None:
    """Objects move with noise, flicker in and out of detection; tracker + counter never over-count."""
    rng = np.random.default_rng(seed)
    spec = LineSpec(0.0, 0.5, 1.0, 0.5)
    tracker, counter = Tracker(), LineCounter(spec, NAMES)
    frames = 60
    positions = []
    for x0, y0, vy_sign, speed in objects:
        ys = y0 * H + np.sign(vy_sign or 1) * speed * np.arange(frames) + rng.normal(0, 2, frames)
        xs = x0 * W + rng.normal(0, 2, frames)
        positions.append((xs, ys))
    crossed = sum(1 for xs, ys in positions if (np.sign(ys - H / 2)[0] != np.sign(ys - H / 2)).any())
    total = 0
    for f in range(frames):
        boxes = [[xs[f] - 15, ys[f] - 15, xs[f] + 15, ys[f] + 15] for xs, ys in positions if rng.random() > 0.15]
        dets = Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32), np.zeros(len(boxes), np.int64))
        total += len(counter.update(tracker.update(dets), W, H, f + 1))
    assert total <= crossed
