"""When does the confusion-corrected composition (``server.trust.adjusted_composition``) beat the raw counts?

Simulated sites with known truth: each trial draws a period's true shares (Dirichlet), its items' true
classes, the class the device counts each as (through a confusion matrix like the shipped classifier's on
belt crops it never saw: recall 0.47-0.71, errors drawn towards ``trash``), and a random review sample of
``--reviewed`` items from the same site. It prints, per period size, the mean pooled count error (sum over
classes of abs(estimated − true) / items) of the raw counts and of the adjusted shares, how often the
adjusted one is the smaller, and how often the true share lies in its 90 % interval; then the same with a
matrix from *other* items (the review sample counted through another classifier's confusion).

    python -m bench.trust [--trials 200] [--reviewed 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import numpy.typing as npt

from server.trust import adjusted_composition

CLASSES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")
RECALL = np.array([0.53, 0.62, 0.71, 0.53, 0.47, 0.58])  # the shipped classifier on held-out belt crops (model card)


def site_confusion(recall: npt.NDArray[np.float64], to_trash: float = 0.4) -> npt.NDArray[np.float64]:
    """P(counted | true): ``recall`` on the diagonal; of the errors, ``to_trash`` go to trash, the rest evenly."""
    k = len(recall)
    m = np.zeros((k, k))
    for i in range(k):
        m[i, i] = recall[i]
        others = [j for j in range(k) if j != i]
        err = 1 - recall[i]
        for j in others:
            m[i, j] = err * (to_trash if j == k - 1 else (1 - to_trash) / (len(others) - 1)) if i != k - 1 else err / len(others)
        m[i] /= m[i].sum()
    return m


def trial(
    rng: np.random.Generator, items: int, reviewed: int, truth_m: npt.NDArray[np.float64], review_m: npt.NDArray[np.float64]
) -> dict[str, float]:
    k = len(CLASSES)
    shares = rng.dirichlet(np.full(k, 2.0))
    true = rng.choice(k, size=items, p=shares)
    counted = np.array([rng.choice(k, p=truth_m[t]) for t in true])
    reviewed_true = rng.choice(k, size=reviewed, p=shares)
    reviewed_counted = np.array([rng.choice(k, p=review_m[t]) for t in reviewed_true])
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (reviewed_true, reviewed_counted), 1)
    real = np.bincount(true, minlength=k) / items
    raw = np.bincount(counted, minlength=k) / items
    counts = {c: int(n) for c, n in zip(CLASSES, np.bincount(counted, minlength=k), strict=True)}
    out = adjusted_composition(counts, confusion, CLASSES, rounds=200, seed=int(rng.integers(1 << 31)))
    est = np.array([out.adjusted[c].value for c in CLASSES])
    inside = np.mean([out.adjusted[c].low <= real[i] <= out.adjusted[c].high for i, c in enumerate(CLASSES)])
    return {"raw": float(np.abs(raw - real).sum()), "adjusted": float(np.abs(est - real).sum()), "covered": float(inside)}


def run(trials: int, reviewed: int, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    site = site_confusion(RECALL)
    other = site_confusion(RECALL[::-1], to_trash=0.1)  # another classifier's errors: the matrix from other items
    rows: dict[str, object] = {}
    for label, review_m, sizes in (("same items", site, (40, 100, 200, 600, 2000)), ("other items", other, (600,))):
        for items in sizes:
            results = [trial(rng, items, reviewed, site, review_m) for _ in range(trials)]
            raw = float(np.mean([r["raw"] for r in results]))
            adjusted = float(np.mean([r["adjusted"] for r in results]))
            better = float(np.mean([r["adjusted"] < r["raw"] for r in results]))
            covered = float(np.mean([r["covered"] for r in results]))
            rows[f"{label}, {items} items"] = {
                "raw_error": round(raw, 3),
                "adjusted_error": round(adjusted, 3),
                "adjusted_better_in": round(better, 3),
                "interval_coverage": round(covered, 3),
            }
    return {"trials": trials, "reviewed": reviewed, "seed": seed, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--reviewed", type=int, default=300, help="randomly sampled reviewed items behind the matrix")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.trials, args.reviewed, args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.trials} trials, a matrix from {args.reviewed} reviewed items; pooled count error (sum of abs errors / items)")
    print(f"{'period':28} {'raw':>7} {'adjusted':>9} {'adj. better':>12} {'90% covers':>11}")
    for name, r in result["rows"].items():  # type: ignore[attr-defined]
        print(f"{name:28} {r['raw_error']:7.3f} {r['adjusted_error']:9.3f} {r['adjusted_better_in']:12.2f} {r['interval_coverage']:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
