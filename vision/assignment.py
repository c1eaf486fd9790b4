"""Minimum-cost assignment (Hungarian algorithm, O(n^2 m)) for small tracker cost matrices."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def linear_assignment(cost: npt.NDArray[np.float32], max_cost: float) -> list[tuple[int, int]]:
    """Pairs (row, col) of a minimum-total-cost matching, keeping only pairs with cost <= ``max_cost``.

    Entries above ``max_cost`` are treated as forbidden, so the optimum never trades a good pair for one
    that would be thrown away.
    """
    n_rows, n_cols = cost.shape
    if n_rows == 0 or n_cols == 0:
        return []
    if n_rows == 1 or n_cols == 1:
        flat = cost.ravel()
        best_i = int(flat.argmin())
        if flat[best_i] > max_cost:
            return []
        return [(0, best_i)] if n_rows == 1 else [(best_i, 0)]
    # Common case: every row that has an allowed partner has a different cheapest column. Each such row
    # then sits at its own minimum (a lower bound) and every row that can be matched is: optimal. Rows
    # whose minimum is over the gate have no allowed partner at all and take no part.
    best = cost.argmin(axis=1)
    best_cost = cost[np.arange(n_rows), best]
    open_rows = np.flatnonzero(best_cost <= max_cost)
    if len(set(best[open_rows].tolist())) == len(open_rows):
        return [(r, int(best[r])) for r in open_rows.tolist()]
    allowed = cost <= max_cost
    rows, cols = open_rows, np.flatnonzero(allowed.any(axis=0))
    if len(rows) < n_rows or len(cols) < n_cols:
        # Rows and columns without one allowed partner take no part: solve the (smaller) rest.
        return sorted((int(rows[r]), int(cols[c])) for r, c in linear_assignment(cost[np.ix_(rows, cols)], max_cost))
    if n_rows > n_cols:  # the same argument, column by column
        best = cost.argmin(axis=0)
        if len(set(best.tolist())) == n_cols:
            return sorted((r, c) for c, r in enumerate(best.tolist()) if cost[r, c] <= max_cost)
    transpose = n_rows > n_cols
    oriented, allowed = (cost.T, allowed.T) if transpose else (cost, allowed)  # ``allowed``: in the cost's dtype, as above
    c = np.where(allowed, oriented.astype(np.float64), (max_cost + 1.0) * 10)
    n, m = c.shape  # n <= m
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, np.int64)  # p[j]: row matched to column j (1-based), 0 = none
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = c[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    pairs = []
    for j in range(1, m + 1):
        if p[j]:
            r, col = p[j] - 1, j - 1
            if allowed[r, col]:
                pairs.append((int(col), int(r)) if transpose else (int(r), int(col)))
    return sorted(pairs)
