"""``python -m bench.adapt``: does ``farz train classify-adapt`` teach a simulated site its products, and at what cost?

A simulated site: half of the validation cut-outs (items the shipped classifier never trained on), chosen
by name, are the site's products; they recur. Its reviewed crops are belt renders of them, three per
"track" (``--crops`` in all); the site's *later* crops are new renders of the same items (another seed).
The other half are items the site never showed. Prints one JSON object: accuracy of the shipped and the
adapted INT8 classifier on the site's later crops, on renders of never-reviewed items, and on the real
photos of never-reviewed items (``--source``'s val split), plus the adapt time on this machine.
Needs ``farz datasets cutouts`` (build/cutouts) and the training extra.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np

from training.classify_adapt import AdaptRecipe, classify_adapt, run_classifier
from training.classify_adapt import accuracy as classify_accuracy
from training.classify_data import belt_crop, belt_cutouts, class_folder_images, photo_crop, read_image, shrink
from training.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "farz-material.int8.onnx"


def site_half(name: str, seed: int) -> bool:
    return hashlib.sha256(f"{seed}:{name}".encode()).digest()[0] < 128


def renders(items: list, others: list, n: int, seed: int, size: int = 224) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    picks = [items[int(rng.integers(len(items)))] for _ in range(n)]
    return [belt_crop(c, others, size, rng) for c in picks], np.array([c.class_id for c in picks])


def accuracy(model: Path, crops: list[np.ndarray], labels: np.ndarray) -> float | None:
    return classify_accuracy(run_classifier(model, crops), labels)


def sum_error(counted: dict[str, dict[str, int]], truth: dict[str, dict[str, int]]) -> float:
    """Sum over classes of |counted - true| / true items (both directions pooled)."""
    classes = {c for per in (*counted.values(), *truth.values()) for c in per}

    def total(counts: dict[str, dict[str, int]], c: str) -> int:
        return sum(per.get(c, 0) for per in counts.values())

    true = sum(total(truth, c) for c in classes)
    return round(sum(abs(total(counted, c) - total(truth, c)) for c in classes) / max(true, 1), 4)


_VIDEOS: dict[str, list[Path]] = {}  # rendered once per run
_SHIPPED: dict[str, dict] = {}  # the shipped classifier's counts of them, measured once


def count_videos(site: list, other: list, names: tuple[str, ...], out: Path, n: int, seed: int, adapted: Path) -> tuple[dict, dict]:
    """Render (once) ``n`` videos of the site's items and ``n`` of other items; count them with both classifiers."""
    from device.count import DEFAULT_MODEL
    from training.count_eval import count_eval
    from training.synth import VideoSpec, render_video

    directions = ("right", "left", "down", "up")
    for label, items in (("site", site), ("other", other)):
        if label not in _VIDEOS:
            paths = []
            for k in range(n):
                spec = VideoSpec(960, 540, 15, 20.0, directions[k % 4], 14.0, 1.2, 5000 + 10 * seed + k, 0.2, 0.42)
                path = out / "videos" / label / f"{label}-s{seed}-{k}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.with_suffix(".truth.json").is_file():
                    render_video(items, names, spec, path)
                paths.append(path)
            _VIDEOS[label] = paths

    def judged(label: str, classifier: Path) -> dict:
        r = count_eval(_VIDEOS[label], DEFAULT_MODEL, classifier)
        error = sum_error(r["pooled_counts"], r["pooled_truth"])
        return {"sum_error": error, "pooled_count_error": r["pooled_count_error"], "counted": r["counted"], "true": r["true"]}

    for label in ("site", "other"):
        if label not in _SHIPPED:
            _SHIPPED[label] = judged(label, SHIPPED)
    return dict(_SHIPPED), {label: judged(label, adapted) for label in ("site", "other")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cutouts", type=Path, default=ROOT / "build" / "cutouts")
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "datasets" / "trashnet")
    parser.add_argument("--crops", type=int, default=1000, help="reviewed site crops (3 per track)")
    parser.add_argument("--eval", type=int, default=600, help="crops per evaluation set")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-adapt")
    parser.add_argument("--seed", type=int, default=0, help="which half of the items is the site's")
    parser.add_argument("--recipe", action="append", default=[], metavar="JSON", help="AdaptRecipe fields to try (repeatable)")
    parser.add_argument("--videos", type=int, default=0, help="also count N belt videos (960x540) of site items and N of other items")
    parser.add_argument("--no-belt-replay", action="store_true", help="replay the base photos only, not belt crops of training cut-outs")
    args = parser.parse_args()
    names = load_taxonomy().names
    items = belt_cutouts(args.cutouts, names, "val")
    if not items:
        raise SystemExit(f"{args.cutouts}/val: no cut-outs; run `farz datasets cutouts` first")
    site = [c for c in items if site_half(c.name, args.seed)]
    other = [c for c in items if not site_half(c.name, args.seed)]
    data = args.out / "site"
    shutil.rmtree(data, ignore_errors=True)  # the rendered videos stay: the same seeds render the same videos
    rng = np.random.default_rng(100 + args.seed)
    for track in range(args.crops // 3):
        item = site[int(rng.integers(len(site)))]
        folder = data / names[item.class_id]
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(3):
            side = int(rng.integers(64, 200))
            cv2.imwrite(str(folder / f"{item.name}-t{track}-c{k}.jpg"), belt_crop(item, site, side, rng))
    later, later_y = renders(site, site, args.eval, 200 + args.seed)
    unseen, unseen_y = renders(other, other, args.eval, 300 + args.seed)
    other_names = {c.name for c in other}
    photos = [(p, c) for p, c in class_folder_images(args.source, names, "val") if p.stem in other_names]
    photo_crops = [photo_crop(shrink(read_image(p), 320), 224, None) for p, _ in photos]
    photo_y = np.array([c for _, c in photos])
    every = class_folder_images(args.source, names, "val")
    every_crops = [photo_crop(shrink(read_image(p), 320), 224, None) for p, _ in every]
    every_y = np.array([c for _, c in every])
    sets = (
        ("site_later_crops", later, later_y),
        ("unreviewed_item_crops", unseen, unseen_y),
        ("unreviewed_photos", photo_crops, photo_y),
        ("val_photos", every_crops, every_y),
    )
    shipped = {label: accuracy(SHIPPED, crops, y) for label, crops, y in sets}
    print(
        json.dumps({"site_items": len(site), "other_items": len(other), "n": {label: len(y) for label, _, y in sets}, "shipped": shipped})
    )
    belt = None if args.no_belt_replay else args.cutouts
    for k, overrides in enumerate(args.recipe or ["{}"]):
        recipe = AdaptRecipe(**json.loads(overrides))
        started = time.perf_counter()
        report = classify_adapt(data, args.out / f"model-{k}", ROOT / "models" / "farz-material.onnx", args.source, "bench", belt, recipe)
        seconds = time.perf_counter() - started
        adapted = args.out / f"model-{k}" / "farz-material.int8.onnx"
        if args.videos:
            shipped_counts, adapted_counts = count_videos(site, other, names, args.out, args.videos, args.seed, adapted)
        result = {
            "recipe": json.loads(overrides),
            "belt_replay": belt is not None,
            "reviewed_crops": report["crops"],
            "adapt_seconds": round(seconds, 1),
            "held_out_by_item": report["held_out_accuracy"],
            "adapted": {label: accuracy(adapted, crops, y) for label, crops, y in sets},
        }
        if args.videos:
            result["videos"] = {"shipped": shipped_counts, "adapted": adapted_counts}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
