"""How far to trust a site's counts, from the items reviewers labelled.

Only the *randomly sampled* reviewed items may be used: the unsure ones are not a fair sample of what the
line carries. From them:

- accuracy and, per class, recall and precision, each with a 90 % Wilson score interval, and the confusion
  matrix (rows: the reviewers' class, columns: the class the device counted);
- the composition of a period corrected by that matrix — *adjusted classify-and-count* (ACC; Forman 2008,
  and QuaPy's ``ACC``): the counted shares ``q`` are what the true shares ``p`` look like through the
  classifier, ``q = Mᵀ p`` with ``M[i, j] = P(counted j | truly i)``; ``p`` is the least-squares solution of
  that system projected onto the simplex (shares ≥ 0 summing to 1). Its 90 % interval comes from a
  bootstrap over both sources of error: the period's counts and the reviewed items the matrix was made from.

The estimate is worse than the raw counts when the period holds few items or the matrix rests on few
reviews (``python -m bench.trust`` measures where), so ``adjusted_composition`` says whether it is reliable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Z90 = 1.6448536269514722  # the standard normal's 95th percentile: a two-sided 90 % interval
MIN_REVIEWED_PER_CLASS = 150  # reviewed items of a class before the estimate is shown (python -m bench.trust: about 1,000 in all)
MIN_PERIOD_ITEMS = 200  # counted items in a period before its adjusted shares are shown (python -m bench.trust)


@dataclass(frozen=True)
class Interval:
    """An estimate in 0-1 with its 90 % interval, from ``n`` items."""

    value: float
    low: float
    high: float
    n: int

    def to_json(self) -> dict[str, float | int]:
        return {"value": round(self.value, 4), "low": round(self.low, 4), "high": round(self.high, 4), "n": self.n}


def wilson(successes: int, n: int, z: float = Z90) -> Interval:
    """The Wilson score interval of a proportion ``successes / n`` (0/0 gives 0 in 0-1)."""
    if n <= 0:
        return Interval(0.0, 0.0, 1.0, 0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n)


@dataclass(frozen=True)
class ReviewedAccuracy:
    """Accuracy, recall and precision per class (Wilson, 90 %) and the confusion matrix of reviewed items."""

    classes: tuple[str, ...]
    accuracy: Interval
    recall: dict[str, Interval]
    precision: dict[str, Interval]
    confusion: npt.NDArray[np.int64]  # (classes, classes): rows the reviewers' class, columns the counted class

    def to_json(self) -> dict[str, object]:
        return {
            "classes": list(self.classes),
            "items": self.accuracy.n,
            "accuracy": self.accuracy.to_json(),
            "recall": {c: i.to_json() for c, i in self.recall.items()},
            "precision": {c: i.to_json() for c, i in self.precision.items()},
            "confusion": self.confusion.tolist(),
        }


def confusion_matrix(pairs: Iterable[tuple[str, str]], classes: Sequence[str]) -> npt.NDArray[np.int64]:
    """(classes, classes) counts of (reviewed class, counted class) pairs; a class outside ``classes`` is a ValueError."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), np.int64)
    for true, counted in pairs:
        if true not in index or counted not in index:
            raise ValueError(f"({true!r}, {counted!r}): not classes of {list(classes)}")
        matrix[index[true], index[counted]] += 1
    return matrix


def reviewed_accuracy(pairs: Iterable[tuple[str, str]], classes: Sequence[str]) -> ReviewedAccuracy:
    """Figures of the randomly sampled reviewed items: ``pairs`` of (the reviewers' class, the counted class)."""
    matrix = confusion_matrix(pairs, classes)
    right = np.diag(matrix)
    recall = {c: wilson(int(right[i]), int(matrix[i].sum())) for i, c in enumerate(classes)}
    precision = {c: wilson(int(right[i]), int(matrix[:, i].sum())) for i, c in enumerate(classes)}
    return ReviewedAccuracy(tuple(classes), wilson(int(right.sum()), int(matrix.sum())), recall, precision, matrix)


def project_to_simplex(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The point of {p ≥ 0, Σp = 1} nearest to ``v`` (Euclidean; Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1.0
    rho = np.nonzero(u - cumulative / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.asarray(np.maximum(v - cumulative[rho] / (rho + 1), 0.0), np.float64)


def adjust(counted_shares: npt.NDArray[np.float64], confusion: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """ACC: the true shares ``p`` (on the simplex) that best explain ``counted_shares`` through ``confusion``
    (rows: true classes; each row is normalised to P(counted | true); an empty row stays the identity)."""
    m = np.array(confusion, np.float64)
    totals = m.sum(axis=1, keepdims=True)
    empty = totals[:, 0] == 0
    m[empty] = np.eye(len(m))[empty]
    m /= m.sum(axis=1, keepdims=True)
    p, *_ = np.linalg.lstsq(m.T, counted_shares, rcond=None)
    return project_to_simplex(np.asarray(p, np.float64))


@dataclass(frozen=True)
class AdjustedComposition:
    """A period's shares as counted and as estimated through the confusion matrix, with 90 % intervals."""

    classes: tuple[str, ...]
    items: int
    reviewed: int
    counted: dict[str, float]
    adjusted: dict[str, Interval]
    reliable: bool
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "items": self.items,
            "reviewed": self.reviewed,
            "counted_shares": {c: round(v, 4) for c, v in self.counted.items()},
            "estimated_shares": {c: i.to_json() for c, i in self.adjusted.items()},
            "estimate": "adjusted classify-and-count through the reviewed confusion matrix; an estimate, not a count",
            "reliable": self.reliable,
            "reason": self.reason,
        }


def adjusted_composition(
    counts: dict[str, int],
    confusion: npt.NDArray[np.int64],
    classes: Sequence[str],
    rounds: int = 1000,
    seed: int = 0,
    min_items: int = MIN_PERIOD_ITEMS,
    min_reviewed: int = MIN_REVIEWED_PER_CLASS,
) -> AdjustedComposition:
    """The period's composition corrected by ``confusion`` (from randomly sampled reviewed items), with a
    90 % bootstrap interval per class (``rounds`` resamples of the counts and of each row of the matrix)."""
    n = sum(counts.get(c, 0) for c in classes)
    reviewed = int(confusion.sum())
    q = np.array([counts.get(c, 0) for c in classes], np.float64) / max(n, 1)
    estimate = adjust(q, confusion)
    rng = np.random.default_rng(seed)
    rows = confusion.sum(axis=1)
    samples = np.empty((rounds, len(classes)))
    for r in range(rounds):
        q_r = rng.multinomial(n, q) / max(n, 1) if n else q
        m_r = np.array([rng.multinomial(t, row / t) if t else row for row, t in zip(confusion, rows, strict=True)], np.float64)
        samples[r] = adjust(q_r, m_r)
    low, high = np.percentile(samples, [5, 95], axis=0)
    thin = [c for c, t in zip(classes, rows, strict=True) if t < min_reviewed and (counts.get(c, 0) > 0 or t > 0)]
    if n < min_items:
        reliable, reason = False, f"{n} items in the period; the estimate beats the raw counts from about {min_items}"
    elif thin:
        reliable, reason = False, f"fewer than {min_reviewed} randomly sampled items reviewed for {', '.join(thin)}"
    else:
        reliable, reason = True, "enough items counted and reviewed"
    return AdjustedComposition(
        tuple(classes),
        n,
        reviewed,
        {c: float(v) for c, v in zip(classes, q, strict=True)},
        {
            c: Interval(float(v), float(lo), float(hi), n)
            for c, v, lo, hi in zip(classes, estimate, np.minimum(low, estimate), np.maximum(high, estimate), strict=True)
        },
        reliable,
        reason,
    )
