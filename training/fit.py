"""``farz train fit``: cut-outs → belt scenes → Ultralytics training, offline, into one run folder."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from training.config import TrainConfig
from training.offline import offline_ultralytics
from training.taxonomy import Taxonomy


def dataset_hash(folder: Path) -> str:
    """sha256 over the sorted relative paths and bytes of every label file and image size in ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in {".txt", ".jpg", ".png", ".yaml"}:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes() if path.suffix in {".txt", ".yaml"} else str(path.stat().st_size).encode())
    return digest.hexdigest()


def pick_images(folder: Path, count: int) -> list[Path]:
    """``count`` images spread evenly over ``folder``'s sorted images (jpg/png, recursive)."""
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    step = max(1, len(images) // max(1, count))
    return images[::step][:count]


def pick_device(requested: str) -> str:
    """'auto' → '0' when CUDA is available, else 'cpu'."""
    if requested != "auto":
        return requested
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def prepare_data(config: TrainConfig, taxonomy: Taxonomy, data_dir: Path) -> Path:
    """Cut-outs (cached) and rendered scenes for a run; returns the dataset's data.yaml."""
    from training.cutouts import make_cutouts
    from training.synth import write_training_set

    data_yaml = data_dir / "data.yaml"
    if data_yaml.exists():
        return data_yaml
    if not (config.cutouts / "report.json").exists():
        if not config.source.is_dir():
            raise FileNotFoundError(f"source photos not found at {config.source}: set `source:` in the config")
        make_cutouts(config.source, config.cutouts, taxonomy, workers=max(1, config.workers))
    counts = {"train": config.synth.train, "val": config.synth.val}
    synth = config.synth
    data = write_training_set(
        config.cutouts,
        data_dir,
        taxonomy.names,
        counts,
        synth.seed,
        synth.closeup,
        synth.shards,
        workers=max(1, config.workers),
        crowded=synth.crowded,
        min_visible=synth.min_visible,
        camera=synth.camera,
        two_tone=synth.two_tone,
        poor_camera=synth.poor_camera,
        flat=synth.flat,
        square=synth.square,
    )
    if synth.photos:
        add_photos(config.cutouts, config.source, data_dir, taxonomy.names, list(counts))
    return data


def add_photos(cutouts: Path, source: Path, data_dir: Path, names: tuple[str, ...], splits: list[str]) -> dict[str, int]:
    """Add the real photos behind each split's cut-outs to that split of a rendered dataset; returns photos per split.

    From a pack (``farz datasets pack``) its packed photos are copied; else they are read from ``source``."""
    from training.cutouts import write_photos
    from training.pack import packed_photos

    added = {}
    for split in splits:
        packed = packed_photos(cutouts, split)
        if packed is not None:
            images = sorted(packed.glob("*.jpg"))
            for image in images:
                shutil.copy(image, data_dir / "images" / split / image.name)
                shutil.copy(packed.parent.parent / "labels" / split / f"{image.stem}.txt", data_dir / "labels" / split)
            added[split] = len(images)
            continue
        if not source.is_dir():
            raise FileNotFoundError(f"source photos not found at {source}: set `source:` in the config or --source")
        added[split] = write_photos(cutouts, source, data_dir, names, split, split)
    return added


def epoch_summary(epoch: int | None, epochs: int, metrics: Mapping[str, float], elapsed_s: float) -> str:
    """One progress line after a validation: ``epoch`` counts from 1 (a time budget may change ``epochs``);
    None is the final validation of the best weights."""
    val = {key: metrics.get(f"metrics/{key}(B)", float("nan")) for key in ("precision", "recall", "mAP50", "mAP50-95")}
    scores = "  ".join(f"{key} {value:.3f}" for key, value in val.items())
    what = "best.pt" if epoch is None else f"epoch {epoch}/{epochs}"
    return f"{what}  val {scores}  {elapsed_s / 60:.1f} min"


def read_results_csv(csv_path: Path) -> dict[str, list[float]]:
    """A run's ``results.csv`` as {column: values}, what Ultralytics' trainer stores in each checkpoint; read
    without polars, which Ultralytics imports only for this and which is too large to carry to a GPU machine."""
    import csv

    try:
        with csv_path.open(newline="") as handle:
            rows = list(csv.DictReader(handle, skipinitialspace=True))
    except OSError:
        return {}
    return {key.strip(): [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def use_csv_reader(trainer: Any) -> None:
    """Ultralytics ``on_pretrain_routine_start`` callback: the trainer reads its results with ``read_results_csv``."""
    trainer.read_results_csv = lambda: read_results_csv(Path(trainer.csv))


class EpochReporter:
    """Ultralytics callbacks that print one line per validated epoch on stderr (Ultralytics itself runs quiet)."""

    def __init__(self) -> None:
        self.started: int | None = None

    def on_train_epoch_start(self, trainer: Any) -> None:
        self.started = trainer.epoch

    def on_fit_epoch_end(self, trainer: Any) -> None:
        epoch = trainer.epoch + 1 if trainer.epoch == self.started else None  # the final validation starts no epoch
        elapsed = time.time() - trainer.train_time_start
        print(epoch_summary(epoch, trainer.epochs, trainer.metrics or {}, elapsed), file=sys.stderr, flush=True)


def fit(config: TrainConfig, taxonomy: Taxonomy, run_dir: Path, data_dir: Path | None = None) -> Path:
    """Train one model; writes weights, results, the config used and data hashes into ``run_dir``.

    Returns the path of the best PyTorch weights (``run_dir/weights/best.pt``).
    """
    if config.init is not None and not config.init.is_file():
        raise FileNotFoundError(f"init weights not found at {config.init}: set `init:` to a run's weights/last.pt or an FP32 .onnx")
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    offline_ultralytics(run_dir.parent)
    data_yaml = prepare_data(config, taxonomy, data_dir or run_dir / "data")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False))
    (run_dir / "data_hash.txt").write_text(dataset_hash(data_yaml.parent) + "\n")

    from ultralytics import YOLO

    init = config.init
    if init is not None and init.suffix == ".onnx":  # an exported file: rebuild trainable weights from it first
        from training.recover import recover

        rebuilt = recover(init, config.model, pick_images(data_yaml.parent / "images" / "train", 128), run_dir / "init.pt")
        print(f"init: {rebuilt.out} rebuilt from {init} (outputs within {rebuilt.max_abs_diff:.2g})", file=sys.stderr, flush=True)
        init = rebuilt.out
    model = YOLO(str(init) if init is not None else config.model)
    model.add_callback("on_pretrain_routine_start", use_csv_reader)
    reporter = EpochReporter()
    model.add_callback("on_train_epoch_start", reporter.on_train_epoch_start)
    model.add_callback("on_fit_epoch_end", reporter.on_fit_epoch_end)
    model.train(
        data=str(data_yaml),
        imgsz=config.imgsz,
        epochs=config.epochs,
        time=config.hours or None,
        batch=config.batch,
        workers=config.workers,
        device=pick_device(config.device),
        seed=config.seed,
        patience=config.patience,
        warmup_epochs=config.warmup_epochs,
        close_mosaic=config.close_mosaic,
        optimizer=config.optimizer,
        lr0=config.lr0,
        lrf=config.lrf,
        cos_lr=config.cos_lr,
        single_cls=config.single_class,
        project=str(run_dir.parent),
        name=run_dir.name,
        exist_ok=True,
        plots=False,
        amp=False,
        verbose=False,
        **config.augment.model_dump(),
    )
    best = run_dir / "weights" / "best.pt"
    if not best.exists():
        raise RuntimeError(f"training ended without {best}; see {run_dir}")
    shutil.copy(data_yaml, run_dir / "data.yaml")
    return best
