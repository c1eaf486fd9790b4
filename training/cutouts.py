"""Cut single waste items out of photos taken on a plain board (TrashNet style).

The board is modelled as a smooth colour field fitted to the photo's border, every pixel's colour
distance to that field gives a first mask, GrabCut refines it, and masks that cannot be trusted (the
item fills the frame, the border is not board, the mask is tiny, ragged, in pieces or bitten) are rejected with a reason.
Photos are split into train/val/test *by item* before anything else (``item_split``): TrashNet shot many
items two or three times in consecutive files, so runs of consecutive file numbers go to one split, with a
gap of left-out photos where two runs of different splits meet, and an item never appears in two splits.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from training.synth import SceneLabels, mask_box, write_data_yaml
from training.taxonomy import Taxonomy

WORK_SIDE = 256  # px: masks are computed on a copy whose longer side is this
MAX_CUTOUT_SIDE = 320  # px: longer side of a stored cut-out
BORDER = 6  # px at WORK_SIDE: the frame of pixels assumed to be board
# A mask found in pieces (a clear bottle's label and cap, a white sheet's printed corners) or bitten (a bowl's
# middle taken for board) shows a part of the item as if it were all of it: reject it when it fills less than
# this share of its convex hull, or when its largest piece is less than this share of the mask. Chosen by eye on
# contact sheets of the cut-outs sorted by hull fill: below 0.6 nearly all are strips and crescents; between 0.6
# and 0.75 they are mixed with whole items of ragged outline (a crumpled wrapper or sheet), which must stay.
MIN_HULL_FILL = 0.6
MIN_MAIN_PIECE = 0.85
SPLITS = (("train", 0.8), ("val", 0.1), ("test", 0.1))
ITEM_RUN = 10  # consecutive file numbers that go to one split together
ITEM_GAP = 2  # files left out at the start of a run that follows a run of another split
_RUN_CYCLE = ("train", "val", "train", "train", "train", "train", "test", "train", "train", "train")
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


@dataclass(frozen=True)
class CutoutResult:
    """Outcome for one source photo: where its cut-out went, or why it was rejected."""

    source: str
    label: str
    split: str
    accepted: bool
    reason: str
    area_fraction: float
    border_touch: float
    output: str | None


def split_of(name: str, seed: str = "farz-v1") -> str:
    """Deterministic split of a source photo by its file name (80/10/10)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for split, share in SPLITS:
        edge += share
        if u < edge:
            return split
    return SPLITS[-1][0]


def item_split(name: str, seed: str = "farz-items-v1") -> str | None:
    """Split of a source photo by item, or None for a photo in a gap between runs of different splits
    (it may show an item of the neighbouring run).

    File numbers are cut into runs of ``ITEM_RUN`` (``glass47.jpg`` is number 47 of prefix ``glass``);
    runs go to splits in a fixed cycle of ten (8 train, 1 val, 1 test) that starts at an offset hashed
    from the prefix, so every class gets 80/10/10 of its runs. A name without a number falls back to
    ``split_of``."""
    match = _NUMBERED.match(Path(name).stem)
    if match is None:
        return split_of(name, seed)
    prefix, number = match["prefix"], int(match["number"])
    offset = int.from_bytes(hashlib.sha256(f"{seed}:{prefix}".encode()).digest()[:4], "big")
    run, position = divmod(max(number - 1, 0), ITEM_RUN)
    split = _RUN_CYCLE[(run + offset) % len(_RUN_CYCLE)]
    if run > 0 and position < ITEM_GAP and _RUN_CYCLE[(run - 1 + offset) % len(_RUN_CYCLE)] != split:
        return None
    return split


def _board_field(lab: np.ndarray) -> tuple[np.ndarray, float]:
    """Fit a quadratic colour field to the border pixels; returns (field HxWx3, border residual std)."""
    h, w = lab.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx /= w
    yy /= h
    border = np.zeros((h, w), bool)
    border[:BORDER, :] = border[-BORDER:, :] = True
    border[:, :BORDER] = border[:, -BORDER:] = True
    design = np.stack([np.ones_like(xx), xx, yy, xx * yy, xx**2, yy**2], axis=-1)
    a = design[border]
    b = lab[border]
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    # Robust refit: drop the border pixels that are far from the first fit (an item touching the edge).
    resid = np.linalg.norm(a @ coef - b, axis=1)
    keep = resid < max(np.percentile(resid, 70), 1.0) * 2.5
    coef, *_ = np.linalg.lstsq(a[keep], b[keep], rcond=None)
    resid = np.linalg.norm(a[keep] @ coef - b[keep], axis=1)
    return (design @ coef).astype(np.float32), float(np.std(resid))


def item_mask(image_bgr: np.ndarray) -> tuple[np.ndarray, float]:
    """Foreground mask (uint8 0/255, same size as the work copy) and the board's residual std."""
    lab = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2LAB).astype(np.float32)
    field, board_std = _board_field(lab)
    diff = lab - field
    diff[..., 0] *= 0.45  # brightness differs in shadows; colour is the stronger cue
    dist = np.linalg.norm(diff, axis=-1)
    dist8 = np.clip(dist * 4, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(dist8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = max(otsu, 40.0)
    sure_fg = dist8 > thr * 1.4
    probable = dist8 > thr
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    probable_u8 = cv2.morphologyEx(probable.astype(np.uint8), cv2.MORPH_CLOSE, kernel, iterations=2)
    gc = np.full(dist8.shape, cv2.GC_BGD, np.uint8)
    gc[cv2.dilate(probable_u8, kernel, iterations=3) > 0] = cv2.GC_PR_BGD
    gc[probable_u8 > 0] = cv2.GC_PR_FGD
    gc[sure_fg] = cv2.GC_FGD
    if (gc == cv2.GC_FGD).sum() > 20 and (gc == cv2.GC_BGD).sum() > 20:
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        cv2.grabCut(image_bgr, gc, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
    mask = np.where((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n > 1:
        areas = stats[1:, cv2.CC_STAT_AREA]
        big = 1 + np.flatnonzero(areas >= areas.max() * 0.15)
        mask = np.isin(labels, big).astype(np.uint8) * 255
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 255, thickness=cv2.FILLED)
    return filled, board_std


def work_mask(image_bgr: np.ndarray) -> tuple[np.ndarray, float]:
    """``item_mask`` of a copy of the photo whose longer side is ``WORK_SIDE``: the mask every cut-out is judged on."""
    scale = WORK_SIDE / max(image_bgr.shape[:2])
    return item_mask(cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))


def judge_mask(mask: np.ndarray, board_std: float) -> tuple[str, float, float]:
    """('ok' or the reason to reject, area fraction, fraction of the image border the mask touches)."""
    area = float((mask > 0).mean())
    edge = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]]) > 0
    touch = float(edge.mean())
    if board_std > 9.0:
        return "border is not a plain board", area, touch
    if area < 0.02:
        return "mask too small (item not found)", area, touch
    if area > 0.75:
        return "item fills the frame", area, touch
    if touch > 0.22:
        return "item is cut by the photo edge", area, touch
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull_area = sum(cv2.contourArea(cv2.convexHull(c)) for c in contours)
    solidity = float((mask > 0).sum()) / max(hull_area, 1.0)
    if solidity < 0.55:
        return "ragged mask (low solidity)", area, touch
    if _in_pieces(mask):
        return "mask in pieces or bitten (item partly found)", area, touch
    return "ok", area, touch


def _in_pieces(mask: np.ndarray) -> bool:
    """Whether a non-empty mask is pieces or a bitten shape rather than a whole item (``MIN_HULL_FILL``, ``MIN_MAIN_PIECE``)."""
    binary = (mask > 0).astype(np.uint8)
    hull_area = cv2.contourArea(cv2.convexHull(cv2.findNonZero(binary)))
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    pieces = stats[1:, cv2.CC_STAT_AREA]
    return bool(binary.sum() < MIN_HULL_FILL * hull_area or pieces.max() < MIN_MAIN_PIECE * pieces.sum())


def _process(args: tuple[str, str, str, str]) -> CutoutResult:
    path_s, label, split, out_dir_s = args
    path = Path(path_s)
    image = cv2.imread(path_s, cv2.IMREAD_COLOR)
    if image is None:
        return CutoutResult(path.name, label, split, False, "unreadable image", 0.0, 0.0, None)
    mask_small, board_std = work_mask(image)
    reason, area, touch = judge_mask(mask_small, board_std)
    if reason != "ok":
        return CutoutResult(path.name, label, split, False, reason, area, touch, None)
    mask = cv2.resize(mask_small, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    mask = cv2.GaussianBlur(mask, (5, 5), 0)
    ys, xs = np.nonzero(mask > 127)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgba = np.dstack([image[y0:y1, x0:x1], mask[y0:y1, x0:x1]])
    fit = MAX_CUTOUT_SIDE / max(rgba.shape[:2])
    if fit < 1:
        rgba = cv2.resize(rgba, None, fx=fit, fy=fit, interpolation=cv2.INTER_AREA)
    out = Path(out_dir_s) / split / label / (path.stem + ".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), rgba)
    return CutoutResult(path.name, label, split, True, "ok", area, touch, str(out.relative_to(out_dir_s)))


def iter_source_photos(root: Path, taxonomy: Taxonomy) -> Iterator[tuple[Path, str]]:
    """(photo path, taxonomy class) for every photo in ``root/<label>/*.jpg|png``."""
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = taxonomy.map_label(folder.name)
        if label is None:
            continue
        for photo in sorted(folder.iterdir()):
            if photo.suffix.lower() in {".jpg", ".jpeg", ".png"}:
                yield photo, label


def contact_sheet(out_dir: Path, results: list[CutoutResult], label: str, tile: int = 96) -> np.ndarray:
    """Grid of the accepted cut-outs of one class on a magenta background, so mask errors stand out."""
    paths = [out_dir / r.output for r in results if r.accepted and r.label == label and r.output]
    cols = 16
    rows = max(1, -(-len(paths) // cols))
    sheet = np.full((rows * tile, cols * tile, 3), (180, 0, 180), np.uint8)
    for i, p in enumerate(paths):
        rgba = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        s = tile / max(rgba.shape[:2])
        rgba = cv2.resize(rgba, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        h, w = rgba.shape[:2]
        r, c = divmod(i, cols)
        cell = sheet[r * tile : r * tile + h, c * tile : c * tile + w]
        alpha = rgba[..., 3:4].astype(np.float32) / 255
        cell[:] = (rgba[..., :3] * alpha + cell * (1 - alpha)).astype(np.uint8)
    return sheet


def make_cutouts(source: Path, out_dir: Path, taxonomy: Taxonomy, workers: int = 2) -> list[CutoutResult]:
    """Cut out every photo under ``source``; writes PNGs, ``report.json`` and ``sheet_<class>.jpg``."""
    from tqdm import tqdm

    jobs = [(str(p), label, split, str(out_dir)) for p, label in iter_source_photos(source, taxonomy) if (split := item_split(p.name))]
    out_dir.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(tqdm(pool.map(_process, jobs, chunksize=8), total=len(jobs), desc="cut-outs", unit="photo"))
    summary: dict[str, dict[str, int]] = {}
    for label in taxonomy.names:
        mine = [r for r in results if r.label == label]
        summary[label] = {"photos": len(mine), "accepted": sum(r.accepted for r in mine)}
        summary[label].update(Counter(r.reason for r in mine if not r.accepted))
        cv2.imwrite(str(out_dir / f"sheet_{label}.jpg"), contact_sheet(out_dir, results, label))
    report = {"source": str(source), "summary": summary, "items": [asdict(r) for r in results]}
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return results


def write_photos(
    cutout_dir: Path, source: Path, out: Path, names: tuple[str, ...], split: str, out_split: str, max_side: int = 0, quality: int = 95
) -> int:
    """Write the real photos behind ``split``'s accepted cut-outs into ``out/images/<out_split>`` (YOLO labels
    beside them in ``out/labels/<out_split>``): each photo as it was taken (scaled down to ``max_side`` px when
    that is set and smaller), JPEG ``quality``, with one box around its item's mask, named ``photo-<label>-<stem>``.
    Returns how many photos were written."""
    report_path = cutout_dir / "report.json"
    if not report_path.is_file():
        raise FileNotFoundError(f"{report_path}: run `farz datasets cutouts` first")
    items = [r for r in json.loads(report_path.read_text())["items"] if r["accepted"] and r["split"] == split]
    (out / "images" / out_split).mkdir(parents=True, exist_ok=True)
    (out / "labels" / out_split).mkdir(parents=True, exist_ok=True)
    for item in items:
        photo = source / item["label"] / item["source"]
        image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{photo}: the photo in {report_path} is missing or unreadable")
        box = mask_box(work_mask(image)[0])
        if 0 < max_side < max(image.shape[:2]):
            scale = max_side / max(image.shape[:2])
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        stem = f"photo-{item['label']}-{Path(item['source']).stem}"
        cv2.imwrite(str(out / "images" / out_split / f"{stem}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        labels = SceneLabels([names.index(item["label"])], [box])
        (out / "labels" / out_split / f"{stem}.txt").write_text(labels.to_text())
    return len(items)


def write_photo_set(cutout_dir: Path, source: Path, out: Path, names: tuple[str, ...], split: str = "test") -> Path:
    """The real photos behind one split's accepted cut-outs as a YOLO dataset (split ``val``; see ``write_photos``).
    This is the un-composited held-out check: the gap between a model's mAP here and on belt scenes made from
    the same items measures how far the scenes are from real images. Returns the dataset's data.yaml."""
    write_photos(cutout_dir, source, out, names, split, "val")
    return write_data_yaml(out, ["val"], names)
