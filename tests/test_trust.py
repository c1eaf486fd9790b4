"""How far to trust the counts: Wilson intervals, accuracy from reviewed items, and the composition
corrected by their confusion matrix, against hand computations and known truth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.trust import adjust, adjusted_composition, confusion_matrix, project_to_simplex, reviewed_accuracy, wilson

CLASSES = ("glass", "metal", "paper")


@pytest.mark.parametrize(("successes", "n", "low", "high"), [(8, 10, 0.5408, 0.9314), (0, 5, 0.0, 0.3511), (45, 50, 0.8085, 0.9505)])
def test_wilson_90_percent_intervals_match_the_hand_computation(successes: int, n: int, low: float, high: float) -> None:
    interval = wilson(successes, n)
    assert interval.value == successes / n and interval.n == n
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


def test_no_reviewed_item_gives_the_whole_range() -> None:
    assert (wilson(0, 0).low, wilson(0, 0).high) == (0.0, 1.0)


def test_accuracy_recall_precision_and_confusion_of_reviewed_items() -> None:
    pairs = [("glass", "glass")] * 4 + [("glass", "metal")] + [("metal", "metal")] * 3 + [("paper", "glass")] * 2
    figures = reviewed_accuracy(pairs, CLASSES)
    assert figures.confusion.tolist() == [[4, 1, 0], [0, 3, 0], [2, 0, 0]]
    assert figures.accuracy.value == 0.7 and figures.accuracy.n == 10
    assert figures.recall["glass"].value == 0.8 and figures.recall["paper"].value == 0.0
    assert figures.precision["glass"].value == pytest.approx(4 / 6) and figures.precision["metal"].value == 0.75
    assert figures.precision["paper"].n == 0  # never counted as paper: no precision to speak of


def test_a_pair_outside_the_taxonomy_is_refused() -> None:
    with pytest.raises(ValueError, match="uranium"):
        confusion_matrix([("uranium", "glass")], CLASSES)


def test_adjusting_noise_free_counts_recovers_the_true_shares() -> None:
    m = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.1, 0.6]])
    truth = np.array([0.5, 0.2, 0.3])
    counted = m.T @ truth  # what the classifier makes of those shares
    assert np.allclose(adjust(counted, m * 50), truth)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=8))
def test_the_simplex_projection_gives_shares_and_keeps_shares(values: list[float]) -> None:
    p = project_to_simplex(np.array(values))
    assert (p >= 0).all() and p.sum() == pytest.approx(1.0)
    assert np.allclose(project_to_simplex(p), p)


def test_the_estimate_is_marked_unreliable_for_few_items_or_few_reviews() -> None:
    confusion = np.array([[80, 15, 5], [10, 85, 5], [20, 5, 75]])
    few = adjusted_composition({"glass": 20, "metal": 10, "paper": 10}, confusion, CLASSES, rounds=50)
    assert not few.reliable and "40 items" in few.reason
    thin = adjusted_composition({"glass": 300, "metal": 200, "paper": 100}, confusion // 10, CLASSES, rounds=50)
    assert not thin.reliable and "reviewed" in thin.reason
    assert adjusted_composition({"glass": 300, "metal": 200, "paper": 100}, confusion * 2, CLASSES, rounds=50).reliable


def test_against_known_truth_the_corrected_shares_are_closer_and_their_intervals_hold_them() -> None:
    """A site whose classifier calls a third of its paper glass: 3,000 items, 1,500 reviewed at random."""
    rng = np.random.default_rng(3)
    m = np.array([[0.85, 0.1, 0.05], [0.1, 0.8, 0.1], [0.33, 0.07, 0.6]])
    truth = np.array([0.2, 0.3, 0.5])
    true = rng.choice(3, size=3000, p=truth)
    counted = np.array([rng.choice(3, p=m[t]) for t in true])
    reviewed_true = rng.choice(3, size=1500, p=truth)
    pairs = [(CLASSES[t], CLASSES[rng.choice(3, p=m[t])]) for t in reviewed_true]
    confusion = confusion_matrix(pairs, CLASSES)
    counts = {c: int(n) for c, n in zip(CLASSES, np.bincount(counted, minlength=3), strict=True)}
    out = adjusted_composition(counts, confusion, CLASSES, rounds=300)
    real = np.bincount(true, minlength=3) / len(true)
    raw_error = sum(abs(out.counted[c] - real[i]) for i, c in enumerate(CLASSES))
    adjusted_error = sum(abs(out.adjusted[c].value - real[i]) for i, c in enumerate(CLASSES))
    assert out.reliable and adjusted_error < raw_error / 3
    assert all(out.adjusted[c].low <= real[i] <= out.adjusted[c].high for i, c in enumerate(CLASSES))
