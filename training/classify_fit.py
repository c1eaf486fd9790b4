"""``farz train classify-fit``: fine-tune the ImageNet-pretrained material classifier on photos and belt crops.

One run folder holds ``best.pt`` (chosen on the validation split only; the test split is never read),
``last.pt``, ``results.csv`` (one row per epoch) and the recipe. Class imbalance (TrashNet has 109 ``trash``
photos against 460 ``paper``) is handled by sampling: each epoch draws its photos with class weights
proportional to ``n_c ** -balance`` (0: as they are, 1: every class equally often), and the belt crops the
same way from the cut-outs.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from training.classify_data import Labelled, augment, belt_crop, belt_cutouts, fixed_belt_crops, load_photos, photo_crop
from training.config import ConfigError, load_recipe
from training.synth import Cutout
from training.taxonomy import Taxonomy


class ClassifierConfig(BaseModel):
    """One classifier training run."""

    model_config = ConfigDict(extra="forbid")
    name: str = "farz-material"
    arch: str = "efficientnet-lite0"
    pretrained: bool = True
    init: Path | None = None  # start from this classify-fit checkpoint (a later sitting) instead of the ImageNet weights
    imgsz: int = Field(224, ge=32, le=512)
    epochs: int = Field(10, ge=1)
    batch: int = Field(32, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.02, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    freeze_blocks: int = Field(6, ge=0, le=16)  # stem + this many MBConv blocks stay as ImageNet trained them
    balance: float = Field(0.5, ge=0, le=1)
    belt_crops_per_epoch: float = Field(1.0, ge=0)  # belt crops per epoch, as a multiple of the photos per epoch
    val_belt_per_item: int = Field(1, ge=0)
    photos_per_class: int = Field(0, ge=0)  # > 0: use only the first n photos per class (smoke runs)
    threads: int = Field(0, ge=0)
    seed: int = 0
    source: Path = Path("../shared/datasets/trashnet")
    cutouts: Path = Path("build/cutouts")


def load_classifier_config(path: Path, overrides: dict[str, object] | None = None) -> ClassifierConfig:
    """Read a classifier recipe; ``overrides`` replace top-level keys. ``ConfigError`` names the field."""
    return load_recipe(path, ClassifierConfig, overrides)


def class_weights(class_ids: list[int], num_classes: int, balance: float) -> np.ndarray:
    """Sampling weight per example, ``n_c ** -balance`` normalised to sum to 1."""
    counts = np.bincount(np.asarray(class_ids, np.int64), minlength=num_classes).astype(np.float64)
    per_class = np.where(counts > 0, np.maximum(counts, 1) ** -balance, 0.0)
    weights = per_class[np.asarray(class_ids, np.int64)]
    return weights / weights.sum()


def epoch_batches(
    photos: list[Labelled], cutouts: list[Cutout], config: ClassifierConfig, rng: np.random.Generator, num_classes: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One epoch's augmented batches: (crops (B, S, S, 3) uint8, labels (B,) int64)."""
    s = config.imgsz
    picks = rng.choice(len(photos), size=len(photos), p=class_weights([p.class_id for p in photos], num_classes, config.balance))
    examples = [(augment(photo_crop(photos[i].image, s, rng), rng), photos[i].class_id) for i in picks]
    if cutouts:
        n_belt = round(len(photos) * config.belt_crops_per_epoch)
        belt = rng.choice(len(cutouts), size=n_belt, p=class_weights([c.class_id for c in cutouts], num_classes, config.balance))
        examples += [(augment(belt_crop(cutouts[i], cutouts, s, rng), rng), cutouts[i].class_id) for i in belt]
    order = rng.permutation(len(examples))
    batches = []
    for start in range(0, len(order), config.batch):
        chunk = [examples[i] for i in order[start : start + config.batch]]
        if len(chunk) >= 2:
            batches.append((np.stack([c[0] for c in chunk]), np.asarray([c[1] for c in chunk], np.int64)))
    return batches


def fit_classifier(config: ClassifierConfig, taxonomy: Taxonomy, run_dir: Path, progress: bool = True) -> Path:
    """Train; returns the run's ``best.pt`` (the epoch with the best validation accuracy)."""
    import torch
    from tqdm import tqdm

    from training.classify_model import build_network, freeze_stem, frozen_modules, to_network_input

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    names = taxonomy.names
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
    if config.init is not None:
        checkpoint = torch.load(str(config.init), map_location="cpu", weights_only=False)
        if tuple(checkpoint.get("names", ())) != names or checkpoint.get("arch") != config.arch:
            found = f"{checkpoint.get('arch')} for {checkpoint.get('names')}"
            raise ConfigError(f"init: {config.init} is a {found}, not {config.arch} for {list(names)}")
        net.load_state_dict(checkpoint["state_dict"])
    freeze_stem(net, config.freeze_blocks)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    total_examples = len(photos) * (1 + (config.belt_crops_per_epoch if cutouts else 0))
    steps_per_epoch = max(1, int(np.ceil(total_examples / config.batch)))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=steps_per_epoch * config.epochs + 8, pct_start=0.15
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    frozen = frozen_modules(net, config.freeze_blocks)

    def evaluate() -> dict[str, float]:
        net.eval()
        scores = {}
        with torch.no_grad():
            for key, items in val_sets.items():
                correct = 0
                for start in range(0, len(items), 64):
                    chunk = items[start : start + 64]
                    x = to_network_input(torch.from_numpy(np.stack([c[0] for c in chunk])))
                    pred = net(x).argmax(1).numpy()
                    correct += int((pred == np.asarray([c[1] for c in chunk])).sum())
                scores[key] = correct / max(1, len(items))
        return scores

    rows: list[dict[str, float]] = []
    best_score = -1.0
    start_time = time.time()
    for epoch in range(1, config.epochs + 1):
        batches = epoch_batches(photos, cutouts, config, rng, len(names))
        net.train()
        for module in frozen:
            module.eval()
        total_loss = 0.0
        bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", unit="batch", disable=not progress, leave=False)
        for crops, labels in bar:
            logits = net(to_network_input(torch.from_numpy(crops)))
            loss = loss_fn(logits, torch.from_numpy(labels))
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
        checkpoint = {
            "arch": config.arch,
            "names": list(names),
            "imgsz": config.imgsz,
            "state_dict": net.state_dict(),
            "epoch": epoch,
            "val": scores,
        }
        torch.save(checkpoint, run_dir / "last.pt")
        if score > best_score:
            best_score = score
            torch.save(checkpoint, run_dir / "best.pt")
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
    print(f"best.pt: validation accuracy {best_score:.3f} (mean over {', '.join(val_sets)})", flush=True)
    return run_dir / "best.pt"
