"""``farz train classify-fit``: fine-tune the ImageNet-pretrained material classifier on photos and belt crops.

One run folder holds ``best.pt`` (chosen on the validation split only; the test split is never read),
``last.pt``, ``results.csv`` (one row per epoch) and the recipe; a run from an exported file (``init: *.onnx``)
also keeps the network it started from as ``init.pt``, for ``farz train average``. ``last.pt`` also holds the optimizer, the
learning-rate schedule and both random generators, so a run cut short (a session's end, a kill) goes on with
``resume=True`` from its last finished epoch exactly as if it had not stopped. Class imbalance (TrashNet has 109 ``trash``
photos against 460 ``paper``) is handled by sampling: each epoch draws its photos with class weights
proportional to ``n_c ** -balance`` (0: as they are, 1: every class equally often), and the belt crops the
same way from the cut-outs.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from training.classify_data import Labelled, belt_cutouts, fixed_belt_crops, load_photos, photo_crop
from training.classify_epochs import EpochMaker, EpochRecipe, epoch_batches
from training.config import ConfigError, load_recipe
from training.taxonomy import Taxonomy

if TYPE_CHECKING:
    import torch


class ClassifierConfig(BaseModel):
    """One classifier training run."""

    model_config = ConfigDict(extra="forbid")
    name: str = "farz-material"
    arch: str = "efficientnet-lite0"
    pretrained: bool = True
    init: Path | None = None  # start from a classify-fit checkpoint (.pt) or an exported FP32 classifier (.onnx), not ImageNet
    imgsz: int = Field(224, ge=32, le=512)
    epochs: int = Field(10, ge=1)
    batch: int = Field(32, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.02, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    freeze_blocks: int = Field(6, ge=0, le=16)  # stem + this many MBConv blocks stay as ImageNet trained them
    # BatchNorm statistics: "train" updates them from each batch; "frozen" keeps them (scale and shift still
    # learn); "auto": frozen when starting from an ONNX file, whose statistics were measured, not learned
    batchnorm: Literal["auto", "train", "frozen"] = "auto"
    balance: float = Field(0.5, ge=0, le=1)
    belt_crops_per_epoch: float = Field(1.0, ge=0)  # belt crops per epoch, as a multiple of the photos per epoch
    poor_camera: float = Field(0.0, ge=0, le=1)  # share of belt crops seen by a poorer camera: dim, noisy, blurred, cast, compressed
    val_belt_per_item: int = Field(1, ge=0)
    photos_per_class: int = Field(0, ge=0)  # > 0: use only the first n photos per class (smoke runs)
    threads: int = Field(0, ge=0)
    # 0: one random stream in this process (the shipped recipes); n: n processes make each epoch's data,
    # seeded per epoch and chunk, one epoch ahead (training.classify_epochs)
    workers: int = Field(0, ge=0, le=64)
    device: str = "auto"  # "auto" (CUDA when there is one), "cpu", "cuda", "cuda:1", ...
    seed: int = 0
    source: Path = Path("../shared/datasets/trashnet")
    cutouts: Path = Path("build/cutouts")


def load_classifier_config(path: Path, overrides: dict[str, object] | None = None) -> ClassifierConfig:
    """Read a classifier recipe; ``overrides`` replace top-level keys. ``ConfigError`` names the field."""
    return load_recipe(path, ClassifierConfig, overrides)


def resume_state(run_dir: Path, config: ClassifierConfig) -> dict[str, object]:
    """The training state in ``run_dir/last.pt``; ``ConfigError`` if there is none or the recipe differs."""
    import torch

    last = run_dir / "last.pt"
    if not last.is_file():
        raise ConfigError(f"{last}: nothing to resume (no last.pt in the run folder); start the run without --resume")
    try:
        state: dict[str, object] = torch.load(str(last), map_location="cpu", weights_only=False)
    except Exception as error:
        raise ConfigError(f"{last}: not a readable classify-fit checkpoint ({error}); start the run again without --resume") from error
    if "optimizer" not in state:
        raise ConfigError(f"{last}: holds weights only, no training state to resume; start the run again without --resume")
    saved = ClassifierConfig.model_validate(state["config"])
    changed = [k for k, v in config.model_dump().items() if k not in ("threads", "device") and saved.model_dump()[k] != v]
    if changed:
        raise ConfigError(
            f"{last}: the run was started with other settings ({', '.join(f'{k}: {saved.model_dump()[k]}' for k in changed)}); "
            "resume it with its own recipe (its config.yaml) or start a new run folder"
        )
    return state


def _from_onnx(config: ClassifierConfig, names: tuple[str, ...], photos: list[Labelled]) -> torch.nn.Module:
    """The network of an exported FP32 classifier (``init: models/farz-material.onnx``), rebuilt for training
    with its BatchNorm statistics measured on 64 of the training photos."""
    from training.classify_recover import recover_classifier

    assert config.init is not None
    step = max(1, len(photos) // 64)
    net, difference = recover_classifier(config.init, names, config.arch, [p.image for p in photos[::step][:64]])
    print(f"init: {config.init} rebuilt for training (probabilities within {difference:.1e} of the file)", flush=True)
    return net


def training_device(name: str) -> torch.device:
    """The torch device of ``device:`` ("auto": CUDA when there is one); ``ConfigError`` if it is absent."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"device: {name!r} is not a torch device (auto, cpu, cuda, cuda:1, ...)") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name!r} asked for, but this machine has no CUDA device; use auto or cpu")
        torch.backends.cudnn.benchmark = True
    return device


def _save(checkpoint: dict[str, object], path: Path) -> None:
    """Write ``checkpoint`` whole or not at all (a kill mid-write leaves the previous file)."""
    import torch

    partial = path.with_suffix(".pt.partial")
    torch.save(checkpoint, partial)
    partial.replace(path)


def _checkpoint(
    config: ClassifierConfig, names: tuple[str, ...], net: torch.nn.Module, epoch: int, scores: dict[str, float]
) -> dict[str, object]:
    """What ``best.pt``, ``last.pt`` and ``init.pt`` hold of the network: architecture, classes, crop size, weights."""
    return {
        "arch": config.arch,
        "names": list(names),
        "imgsz": config.imgsz,
        "state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
        "epoch": epoch,
        "val": scores,
    }


def fit_classifier(
    config: ClassifierConfig,
    taxonomy: Taxonomy,
    run_dir: Path,
    progress: bool = True,
    resume: bool = False,
    stop_after: int = 0,
) -> Path:
    """Train; returns the run's ``best.pt`` (the epoch with the best validation accuracy). With ``resume``,
    go on from ``run_dir/last.pt`` (same recipe) after its last finished epoch; ``stop_after`` > 0 ends this
    sitting after that many epochs (the schedule stays the whole run's, so a later ``resume`` goes on)."""
    import torch
    from tqdm import tqdm

    from training.classify_model import build_network, freeze_stem, frozen_modules, to_network_input

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    names = taxonomy.names
    state = resume_state(run_dir, config) if resume else None
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    photos = load_photos(config.source, names, "train", config.photos_per_class)
    val_photos = load_photos(config.source, names, "val", config.photos_per_class)
    cutouts = belt_cutouts(config.cutouts, names, "train") if config.belt_crops_per_epoch > 0 else []
    val_belt = fixed_belt_crops(belt_cutouts(config.cutouts, names, "val"), config.imgsz, config.val_belt_per_item, config.seed + 1)
    val_sets = {"photos": [(photo_crop(p.image, config.imgsz, None), p.class_id) for p in val_photos]}
    if val_belt:
        val_sets["belt"] = [(b.image, b.class_id) for b in val_belt]

    net = build_network(config.arch, len(names), config.pretrained and config.init is None)
    if config.init is not None and config.init.suffix == ".onnx" and state is None:
        net = _from_onnx(config, names, photos)
        _save(_checkpoint(config, names, net, 0, {}), run_dir / "init.pt")  # the start, for `farz train average`
    elif config.init is not None and state is None:
        checkpoint = torch.load(str(config.init), map_location="cpu", weights_only=False)
        if tuple(checkpoint.get("names", ())) != names or checkpoint.get("arch") != config.arch:
            found = f"{checkpoint.get('arch')} for {checkpoint.get('names')}"
            raise ConfigError(f"init: {config.init} is a {found}, not {config.arch} for {list(names)}")
        net.load_state_dict(checkpoint["state_dict"])
    freeze_stem(net, config.freeze_blocks)
    device = training_device(config.device)
    net.to(device)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    total_examples = len(photos) * (1 + (config.belt_crops_per_epoch if cutouts else 0))
    steps_per_epoch = max(1, int(np.ceil(total_examples / config.batch)))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=steps_per_epoch * config.epochs + 8, pct_start=0.15
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    frozen = frozen_modules(net, config.freeze_blocks)
    onnx_init = config.init is not None and config.init.suffix == ".onnx"
    if config.batchnorm == "frozen" or (config.batchnorm == "auto" and onnx_init):
        frozen += [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    def evaluate() -> dict[str, float]:
        net.eval()
        scores = {}
        with torch.no_grad():
            for key, items in val_sets.items():
                correct = 0
                for start in range(0, len(items), 64):
                    chunk = items[start : start + 64]
                    x = to_network_input(torch.from_numpy(np.stack([c[0] for c in chunk])).to(device))
                    pred = net(x).argmax(1).cpu().numpy()
                    correct += int((pred == np.asarray([c[1] for c in chunk])).sum())
                scores[key] = correct / max(1, len(items))
        return scores

    rows: list[dict[str, float]] = []
    best_score = -1.0
    first_epoch = 1
    if state is not None:
        net.load_state_dict(state["state_dict"])  # type: ignore[arg-type]
        optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
        scheduler.load_state_dict(state["scheduler"])  # type: ignore[arg-type]
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])  # type: ignore[arg-type]
        rows = list(state["rows"])  # type: ignore[call-overload]
        best_score = float(state["best_score"])  # type: ignore[arg-type]
        first_epoch = int(state["epoch"]) + 1  # type: ignore[call-overload]
        print(f"resuming {run_dir} after epoch {first_epoch - 1}/{config.epochs}", flush=True)
    start_time = time.time() - (rows[-1]["minutes"] * 60 if rows else 0.0)
    last_epoch = config.epochs if stop_after <= 0 else min(config.epochs, first_epoch + stop_after - 1)
    belt_share = config.belt_crops_per_epoch if cutouts else 0.0
    recipe = EpochRecipe(config.imgsz, config.batch, config.balance, belt_share, config.seed, config.poor_camera)
    maker = EpochMaker(photos, cutouts, recipe, len(names), config.workers) if config.workers else None
    try:
        for epoch in range(first_epoch, last_epoch + 1):
            batches = maker.batches(epoch, last_epoch) if maker else epoch_batches(photos, cutouts, recipe, rng, len(names))
            net.train()
            for module in frozen:
                module.eval()
            total_loss = 0.0
            bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", unit="batch", disable=not progress, leave=False)
            for crops, labels in bar:
                logits = net(to_network_input(torch.from_numpy(crops).to(device)))
                loss = loss_fn(logits, torch.from_numpy(labels).to(device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                total_loss += loss.item() * len(labels)
            scores = evaluate()
            score = float(np.mean(list(scores.values())))
            row = {"epoch": epoch, "loss": total_loss / max(1, sum(len(b[1]) for b in batches)), "minutes": (time.time() - start_time) / 60}
            row.update({f"val_{k}_accuracy": v for k, v in scores.items()})
            rows.append(row)
            checkpoint = _checkpoint(config, names, net, epoch, scores)
            if score > best_score:
                best_score = score
                _save(checkpoint, run_dir / "best.pt")
            training_state = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "rows": rows,
                "best_score": best_score,
                "config": json.loads(config.model_dump_json()),
            }
            _save({**checkpoint, **training_state}, run_dir / "last.pt")
            print(
                f"epoch {epoch}/{config.epochs}: loss {row['loss']:.3f}, "
                + ", ".join(f"val {k} accuracy {v:.3f}" for k, v in scores.items())
                + f", {row['minutes']:.1f} min",
                flush=True,
            )
            with (run_dir / "results.csv").open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[-1]))
                writer.writeheader()
                writer.writerows(rows)
    finally:
        if maker is not None:
            maker.close()
    if last_epoch < config.epochs:
        print(f"stopped after epoch {last_epoch}/{config.epochs}; go on with --resume", flush=True)
    print(f"best.pt: validation accuracy {best_score:.3f} (mean over {', '.join(val_sets)})", flush=True)
    return run_dir / "best.pt"
