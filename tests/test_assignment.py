"""Minimum-cost assignment against exhaustive search."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vision.assignment import linear_assignment


def best_by_search(cost: np.ndarray, max_cost: float) -> tuple[int, float]:
    """(most allowed pairs, least total cost among those) over every matching of the smaller side."""
    rows, cols = cost.shape
    best = (0, 0.0)
    small, large = (rows, cols) if rows <= cols else (cols, rows)
    matrix = cost if rows <= cols else cost.T
    for perm in itertools.permutations(range(large), small):
        allowed = [matrix[i, j] for i, j in enumerate(perm) if matrix[i, j] <= max_cost]
        candidate = (len(allowed), float(sum(allowed)))
        if candidate[0] > best[0] or (candidate[0] == best[0] and candidate[1] < best[1]):
            best = candidate
    return best


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**32 - 1), st.sampled_from([0.3, 0.8, 1.5]))
def test_assignment_is_optimal_and_respects_the_gate(rows: int, cols: int, seed: int, max_cost: float) -> None:
    rng = np.random.default_rng(seed)
    cost = rng.uniform(0, 1.2, (rows, cols)).astype(np.float32)
    if seed % 3 == 0:
        cost = np.round(cost, 1)  # ties
    pairs = linear_assignment(cost, max_cost)
    assert len({r for r, _ in pairs}) == len(pairs) == len({c for _, c in pairs})
    assert all(cost[r, c] <= max_cost for r, c in pairs)
    count, total = best_by_search(cost, max_cost)
    assert len(pairs) == count
    assert abs(sum(float(cost[r, c]) for r, c in pairs) - total) < 1e-4


def test_empty_matrices_give_no_pairs() -> None:
    assert linear_assignment(np.zeros((0, 3), np.float32), 1.0) == []
    assert linear_assignment(np.zeros((2, 0), np.float32), 1.0) == []
