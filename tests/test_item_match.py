"""``training.item_match``: count events paired with the true items of a rendered video, one to one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from device.truth import TrueCrossing
from training.item_match import CountedAt, ItemMatch, judge_items, match_items


def item(frame: int, x: float, y: float = 0.5, direction: str = "in", vx: float = 0.02) -> TrueCrossing:
    """An item 0.2 of the frame wide moving right at ``vx`` per frame, its centre at (x, y) in ``frame``."""
    return TrueCrossing(frame, "glass", direction, x, y, 0.2, 0.2, vx, 0.0)


def at(frame: int, x: float, y: float = 0.5, direction: str = "in", track: int = 1) -> CountedAt:
    return CountedAt(frame, x, y, direction, track)


def test_each_item_counted_once_pairs_them_all() -> None:
    items = [item(10, 0.5), item(30, 0.5, 0.3)]
    assert match_items([at(11, 0.52), at(30, 0.5, 0.3, track=2)], items) == ItemMatch(2, 0, 0, 0, 0)


def test_two_tracks_on_one_item_are_counted_twice_and_a_stain_is_no_item() -> None:
    items = [item(10, 0.5)]
    # a second track on the same item's other half, and a box where no item is (a stain riding the belt)
    events = [at(10, 0.45), at(11, 0.58, track=2), at(10, 0.5, 0.1, track=3)]
    assert match_items(events, items) == ItemMatch(1, 1, 1, 0, 0)


def test_an_item_counted_late_by_its_own_track_is_still_that_item_and_a_missed_one_is_missed() -> None:
    # the detector lost the first item for 20 frames past the line: counted where it had moved to
    items = [item(10, 0.5), item(40, 0.5, 0.2)]
    assert match_items([at(30, 0.5 + 20 * 0.02)], items) == ItemMatch(1, 0, 0, 1, 0)
    assert match_items([at(10 + 60, 0.5 + 60 * 0.02)], items[:1]) == ItemMatch(0, 0, 1, 1, 0)  # too late: not it


def test_an_item_counted_the_wrong_way_is_paired_and_reported() -> None:
    assert match_items([at(10, 0.5, direction="out")], [item(10, 0.5)]) == ItemMatch(1, 0, 0, 0, 1)


def test_neighbours_are_paired_one_to_one_at_least_distance() -> None:
    # two items side by side across the belt, counted in the same frame: each event takes its own item
    items = [item(10, 0.5, 0.4), item(10, 0.5, 0.6)]
    assert match_items([at(10, 0.5, 0.58), at(10, 0.5, 0.41, track=2)], items) == ItemMatch(2, 0, 0, 0, 0)


@given(st.lists(st.tuples(st.integers(0, 200), st.floats(0.0, 1.0), st.floats(0.0, 1.0)), max_size=12), st.integers(0, 12))
def test_every_event_and_item_is_accounted_for_once(events: list[tuple[int, float, float]], n_items: int) -> None:
    items = [item(15 * k, 0.5, 0.1 + 0.06 * k) for k in range(n_items)]
    m = match_items([at(f, x, y, track=k) for k, (f, x, y) in enumerate(events)], items)
    assert m.paired + m.twice + m.no_item == len(events)
    assert m.paired + m.missed == n_items and m.wrong_direction == 0


def test_each_event_says_what_it_was_and_which_item_it_lay_on() -> None:
    items = [item(10, 0.5), item(40, 0.5, 0.3, direction="out"), item(60, 0.5, 0.7)]
    events = [at(10, 0.45), at(11, 0.58, track=2), at(10, 0.5, 0.05, track=3), at(40, 0.5, 0.3, "in", track=4)]
    judged = judge_items(events, items)
    assert judged.verdicts == ("paired", "twice", "no_item", "wrong_direction")
    assert judged.item_of == (0, 0, -1, 1) and judged.missed == (2,)
    assert judged.summary() == match_items(events, items) == ItemMatch(2, 1, 1, 1, 1)
