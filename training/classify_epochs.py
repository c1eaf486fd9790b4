"""One epoch of the material classifier's training data: augmented photos and belt crops, in batches.

Two ways to make them, chosen by the recipe's ``workers``:

- ``0``: one random stream in this process, epoch after epoch (the shipped recipes; reproducible as they were).
- ``n ≥ 1``: ``n`` worker processes. Each epoch's examples are cut into chunks of ``CHUNK``, each drawn from
  its own generator seeded by ``(seed, epoch, chunk)``, so the data depends on the seed and the epoch only,
  never on the number of workers; the next epoch is made while this one trains. A belt crop costs about
  15 ms on one core (measured here), about 45 s of a 2:1 epoch in one process; 15 workers on the GPU
  machine's 16 cores make it in about 3 s.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from typing import Any

import cv2
import numpy as np

from training.classify_data import Labelled, augment, belt_crop, photo_crop
from training.synth import Cutout, poor_camera_look

CHUNK = 256  # examples per independently seeded chunk
Batches = list[tuple[np.ndarray, np.ndarray]]
Example = tuple[np.ndarray, int]


@dataclass(frozen=True)
class EpochRecipe:
    """What an epoch is made of: crop size px, batch size, class balance power, belt crops per photo, and the
    share of belt crops seen by a poorer camera (``synth.poor_camera_look``)."""

    imgsz: int
    batch: int
    balance: float
    belt_crops_per_epoch: float
    seed: int
    poor_camera: float = 0.0


def class_weights(class_ids: list[int], num_classes: int, balance: float) -> np.ndarray:
    """Sampling weight per example, ``n_c ** -balance`` normalised to sum to 1."""
    counts = np.bincount(np.asarray(class_ids, np.int64), minlength=num_classes).astype(np.float64)
    per_class = np.where(counts > 0, np.maximum(counts, 1) ** -balance, 0.0)
    weights = per_class[np.asarray(class_ids, np.int64)]
    return weights / weights.sum()


def _picks(
    photos: Sequence[Labelled], cutouts: Sequence[Cutout], recipe: EpochRecipe, rng: np.random.Generator, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which photos and which cut-outs this epoch draws, with the class balance."""
    photo_picks = rng.choice(len(photos), size=len(photos), p=class_weights([p.class_id for p in photos], num_classes, recipe.balance))
    belt_picks = np.zeros(0, np.int64)
    if cutouts:
        n_belt = round(len(photos) * recipe.belt_crops_per_epoch)
        weights = class_weights([c.class_id for c in cutouts], num_classes, recipe.balance)
        belt_picks = rng.choice(len(cutouts), size=n_belt, p=weights)
    return photo_picks, belt_picks


def _examples(
    photos: Sequence[Labelled],
    cutouts: Sequence[Cutout],
    photo_picks: Sequence[int],
    belt_picks: Sequence[int],
    size: int,
    rng: np.random.Generator,
    poor_camera: float = 0.0,
) -> list[Example]:
    examples = [(augment(photo_crop(photos[i].image, size, rng), rng), photos[i].class_id) for i in photo_picks]
    others = list(cutouts)
    for i in belt_picks:
        crop = augment(belt_crop(cutouts[i], others, size, rng), rng)
        if poor_camera > 0 and rng.random() < poor_camera:  # no number drawn at 0: older recipes make the same epochs
            crop = poor_camera_look(crop, rng)
        examples.append((crop, cutouts[i].class_id))
    return examples


def _batches(examples: list[Example], order: np.ndarray, batch: int) -> Batches:
    out = []
    for start in range(0, len(order), batch):
        chunk = [examples[i] for i in order[start : start + batch]]
        if len(chunk) >= 2:
            out.append((np.stack([c[0] for c in chunk]), np.asarray([c[1] for c in chunk], np.int64)))
    return out


def epoch_batches(
    photos: Sequence[Labelled], cutouts: Sequence[Cutout], recipe: EpochRecipe, rng: np.random.Generator, num_classes: int
) -> Batches:
    """One epoch from the single stream ``rng``: (crops (B, S, S, 3) uint8, labels (B,) int64) batches."""
    photo_picks, belt_picks = _picks(photos, cutouts, recipe, rng, num_classes)
    examples = _examples(photos, cutouts, photo_picks.tolist(), belt_picks.tolist(), recipe.imgsz, rng, recipe.poor_camera)
    return _batches(examples, rng.permutation(len(examples)), recipe.batch)


_WORKER_DATA: dict[str, Any] = {}  # set in each worker process by _init_worker (a fork copies it for free)


def _init_worker(photos: Sequence[Labelled], cutouts: Sequence[Cutout], size: int, poor_camera: float) -> None:
    _WORKER_DATA.update(photos=photos, cutouts=cutouts, size=size, poor_camera=poor_camera)


def _make_chunk(job: tuple[list[int], list[int], list[int]]) -> list[Example]:
    """One chunk's examples, in a worker: (seed, photo picks, cut-out picks) → [(crop, class id)]."""
    seed, photo_picks, belt_picks = job
    rng = np.random.default_rng(seed)
    data = _WORKER_DATA
    return _examples(data["photos"], data["cutouts"], photo_picks, belt_picks, data["size"], rng, data["poor_camera"])


class EpochMaker:
    """Makes epochs in ``workers`` processes, one epoch ahead: ``start(e)``, then ``batches(e)``."""

    def __init__(self, photos: Sequence[Labelled], cutouts: Sequence[Cutout], recipe: EpochRecipe, num_classes: int, workers: int) -> None:
        self.photos, self.cutouts, self.recipe, self.num_classes = photos, cutouts, recipe, num_classes
        context = multiprocessing.get_context("fork")
        # OpenCV's thread pool does not survive a fork: a worker forked while it had threads can hang in its
        # first cv2 call. Its threads are stopped for the fork (workers then run cv2 on one thread each).
        threads = cv2.getNumThreads()
        cv2.setNumThreads(0)
        try:
            self.pool: Pool = context.Pool(workers, initializer=_init_worker, initargs=(photos, cutouts, recipe.imgsz, recipe.poor_camera))
        finally:
            cv2.setNumThreads(threads)
        self.pending: dict[int, tuple[list[AsyncResult[list[Example]]], np.ndarray]] = {}

    def start(self, epoch: int) -> None:
        """Begin making ``epoch`` in the background (no-op if already begun)."""
        if epoch in self.pending:
            return
        rng = np.random.default_rng([self.recipe.seed, epoch])
        photo_picks, belt_picks = _picks(self.photos, self.cutouts, self.recipe, rng, self.num_classes)
        n_photos, total = len(photo_picks), len(photo_picks) + len(belt_picks)
        jobs = []
        for k, start in enumerate(range(0, total, CHUNK)):  # chunk k: examples start..start+CHUNK of photos, then belt crops
            end = start + CHUNK
            photos = photo_picks[start:end].tolist()
            belts = belt_picks[max(start - n_photos, 0) : max(end - n_photos, 0)].tolist()
            jobs.append(self.pool.apply_async(_make_chunk, (([self.recipe.seed, epoch, k], photos, belts),)))
        self.pending[epoch] = (jobs, rng.permutation(total))

    def batches(self, epoch: int, last: int) -> Batches:
        """The batches of ``epoch`` (waits for them); the next one begins unless ``epoch`` is ``last``."""
        self.start(epoch)
        jobs, order = self.pending.pop(epoch)
        examples = [example for job in jobs for example in job.get()]
        if epoch < last:
            self.start(epoch + 1)
        return _batches(examples, order, self.recipe.batch)

    def close(self) -> None:
        """Stop the worker processes."""
        self.pool.terminate()
        self.pool.join()
