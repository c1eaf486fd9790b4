"""``farz datasets pack``: a compact, self-contained copy of the training cut-outs for another machine.

The lent GPU machine receives at most 64 MiB per call (``../shared/GPU.md``), and ``../shared`` does not
travel. The cut-outs as made here are PNGs (about 150 MB); a pack holds the train and val cut-outs as lossy
WebP with alpha (about 13 KB each), the real photos behind them scaled down with their one-box labels, and a
``report.json`` of those splits. The test split never goes into a pack: it stays held out.

With ``class_photos`` a pack also holds ``classes/<class>/*.webp``: every train and val photo by item
(``training.cutouts.item_split``; the file names are kept, they carry the split), for the material
classifier's ``source:``.

A pack is a valid ``cutouts:`` folder: ``farz datasets synth --cutouts PACK`` renders from it, and
``--photos`` (``synth.photos``) copies its packed photos instead of reading the source photos.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
from tqdm import tqdm

from training.cutouts import write_photos


class PackError(ValueError):
    """The output folder holds something other than an earlier pack; the message says which folder."""


PACKED_SPLITS = ("train", "val")
CLASS_PHOTOS = "classes"  # subfolder of a pack: <class>/<name>.webp, the classifier's train and val photos
PACKED_PHOTOS = "photos"  # subfolder of a pack: images/<split>/photo-*.jpg and labels/<split>/photo-*.txt


@dataclass(frozen=True)
class Pack:
    """What :func:`pack_cutouts` wrote: cut-outs and photos per split, and the pack's size in bytes."""

    cutouts: dict[str, int]
    photos: dict[str, int]
    bytes: int
    class_photos: int = 0


def pack_cutouts(
    cutout_dir: Path,
    source: Path | None,
    out: Path,
    names: tuple[str, ...],
    webp_quality: int = 90,
    photo_side: int = 384,
    class_photos: Path | None = None,
) -> Pack:
    """Write the train and val cut-outs of ``cutout_dir`` to ``out`` as WebP, with their real photos (from
    ``source``, long side ``photo_side`` px) unless ``source`` is None, and the class folders of every train
    and val photo of ``class_photos`` when given. Returns counts and the pack's size."""
    report_path = cutout_dir / "report.json"
    if not report_path.is_file():
        raise FileNotFoundError(f"{report_path}: run `farz datasets cutouts` first")
    report = json.loads(report_path.read_text())
    items = [r for r in report["items"] if r["split"] in PACKED_SPLITS]
    if out.exists():
        previous = out / "report.json"
        if any(out.iterdir()) and not (previous.is_file() and "packed_from" in json.loads(previous.read_text())):
            raise PackError(f"{out} exists and is not a pack: choose an empty or new --out folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cutouts = dict.fromkeys(PACKED_SPLITS, 0)
    for item in tqdm([r for r in items if r["accepted"]], desc="pack cut-outs", unit="item"):
        rgba = cv2.imread(str(cutout_dir / item["output"]), cv2.IMREAD_UNCHANGED)
        if rgba is None:
            raise FileNotFoundError(f"{cutout_dir / item['output']}: a cut-out in {report_path} is missing or unreadable")
        target = out / Path(item["output"]).with_suffix(".webp")
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), rgba, [cv2.IMWRITE_WEBP_QUALITY, webp_quality])
        item["output"] = str(target.relative_to(out))
        cutouts[item["split"]] += 1
    photos = dict.fromkeys(PACKED_SPLITS, 0)
    if source is not None:
        for split in PACKED_SPLITS:
            photos[split] = write_photos(cutout_dir, source, out / PACKED_PHOTOS, names, split, split, max_side=photo_side, quality=85)
    folders = pack_class_photos(class_photos, out / CLASS_PHOTOS, names) if class_photos is not None else 0
    (out / "report.json").write_text(json.dumps({**report, "items": items, "packed_from": str(cutout_dir)}, indent=1))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return Pack(cutouts, photos, size, folders)


def pack_class_photos(source: Path, out: Path, names: tuple[str, ...], side: int = 320, webp_quality: int = 80) -> int:
    """Every train and val photo by item of ``source/<class>/`` to ``out/<class>/<name>.webp``, its longer side
    at most ``side`` px (the classifier keeps photos at 320 px); returns how many."""
    from training.classify_data import class_folder_images, read_image, shrink

    listed = [item for split in PACKED_SPLITS for item in class_folder_images(source, names, split)]
    for path, class_id in tqdm(listed, desc="pack class photos", unit="photo"):
        target = out / names[class_id] / f"{path.stem}.webp"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), shrink(read_image(path), side), [cv2.IMWRITE_WEBP_QUALITY, webp_quality])
    return len(listed)


def packed_photos(cutout_dir: Path, split: str) -> Path | None:
    """The packed photos of ``split`` inside a pack (``…/photos/images/<split>``), or None outside a pack."""
    folder = cutout_dir / PACKED_PHOTOS / "images" / split
    return folder if folder.is_dir() else None
