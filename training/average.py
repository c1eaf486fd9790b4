"""``farz train average``: one model whose weights are the weighted mean of several runs' (a weight soup).

Runs fine-tuned from one starting point stay in one basin of the loss, so the mean of their weights is a
working model that keeps much of what each run learned (Wortsman et al., *Model soups*, ICML 2022; *Robust
fine-tuning of zero-shot models*, CVPR 2022): a run that made a model robust to poor pictures, averaged with
the run it started from, gains most of the robustness and loses less of the old behaviour. Two kinds of
checkpoint average: detectors (an Ultralytics ``.pt``, for ``farz train export`` or a config's ``init:``) and
material classifiers (``farz train classify-fit``'s ``best.pt`` or ``init.pt``, for ``classify-export``). Only
runs of one architecture average: every tensor must match by name and shape, and classifiers must name the
same classes. BatchNorm statistics are averaged like the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from training.offline import offline_ultralytics

CLASSIFIER_KEYS = ("arch", "names", "imgsz")  # what a classifier checkpoint keeps besides its weights


class AverageError(ValueError):
    """The checkpoints or weights cannot be averaged; the message says which file or tensor and why."""


@dataclass(frozen=True)
class Averaged:
    """What :func:`average_checkpoints` wrote."""

    out: Path
    kind: Literal["detector", "classifier"]
    tensors: int  # floating-point tensors averaged (weights and BatchNorm statistics)
    kept: int  # integer tensors copied from the first checkpoint (BatchNorm batch counters)
    weights: tuple[float, ...]  # each checkpoint's share, summing to 1


@dataclass(frozen=True)
class _Loaded:
    checkpoint: dict[str, Any]
    state: dict[str, Any]  # tensor name → tensor
    kind: Literal["detector", "classifier"]
    model: Any = None  # a detector's module (its EMA when the checkpoint has one), whose state is ``state``


def normalised_weights(weights: Sequence[float] | None, count: int) -> tuple[float, ...]:
    """Shares for ``count`` checkpoints: equal when ``weights`` is None, else ``weights`` scaled to sum to 1."""
    if count < 2:
        raise AverageError(f"give at least two checkpoints to average (got {count})")
    if weights is None:
        return tuple(1.0 / count for _ in range(count))
    if len(weights) != count:
        raise AverageError(f"--weights has {len(weights)} values for {count} checkpoints: give one per checkpoint")
    if any(not w >= 0 for w in weights) or sum(weights) <= 0:
        raise AverageError(f"--weights must be 0 or more and not all 0 (got {', '.join(f'{w:g}' for w in weights)})")
    total = sum(weights)
    return tuple(w / total for w in weights)


def _load(path: Path) -> _Loaded:
    import torch

    if not path.is_file():
        raise AverageError(f"{path}: no such checkpoint (a run's weights/best.pt, or a classifier run's best.pt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise AverageError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint and "arch" in checkpoint:
        return _Loaded(checkpoint, dict(checkpoint["state_dict"]), "classifier")
    model = None
    if isinstance(checkpoint, dict):
        model = checkpoint["ema"] if checkpoint.get("ema") is not None else checkpoint.get("model")
    if model is None or not hasattr(model, "state_dict"):
        raise AverageError(f"{path}: not a checkpoint of `farz train fit` or `farz train classify-fit` (no model in it)")
    return _Loaded(checkpoint, dict(model.state_dict()), "detector", model)


def _check_same(paths: Sequence[Path], loaded: Sequence[_Loaded]) -> None:
    first = loaded[0]
    for path, other in zip(paths[1:], loaded[1:], strict=True):
        if other.kind != first.kind:
            raise AverageError(f"{path}: a {other.kind}, {paths[0]} a {first.kind}: average runs of one model only")
        if first.kind == "classifier":
            for key in ("arch", "names"):
                if other.checkpoint.get(key) != first.checkpoint.get(key):
                    raise AverageError(f"{path}: {key} {other.checkpoint.get(key)}, {first.checkpoint.get(key)} in {paths[0]}")
        only_one = sorted(set(first.state) ^ set(other.state))
        if only_one:
            raise AverageError(f"{path}: not the architecture of {paths[0]} (tensor {only_one[0]!r} is in one only)")
        for name, tensor in first.state.items():
            shape, expected = tuple(other.state[name].shape), tuple(tensor.shape)
            if shape != expected:
                raise AverageError(f"{path}: tensor {name!r} is {shape}, {expected} in {paths[0]}: not one architecture")


def average_checkpoints(paths: Sequence[Path], out: Path, weights: Sequence[float] | None = None) -> Averaged:
    """Write ``out``: the first checkpoint with every floating-point tensor replaced by the weighted mean.

    Means are taken in float32 and stored in each tensor's own dtype (a detector run's ``best.pt`` holds
    float16). A detector keeps the first checkpoint's other entries (its training arguments) without the
    optimizer; a classifier keeps only its architecture, classes and crop size.
    """
    shares = normalised_weights(weights, len(paths))
    offline_ultralytics(out.parent)
    import torch

    loaded = [_load(path) for path in paths]
    _check_same(paths, loaded)
    first = loaded[0]
    averaged: dict[str, torch.Tensor] = {}
    tensors = kept = 0
    for name, tensor in first.state.items():
        if tensor.is_floating_point():
            mean = sum(share * entry.state[name].float() for share, entry in zip(shares, loaded, strict=True))
            averaged[name] = torch.as_tensor(mean).to(tensor.dtype)
            tensors += 1
        else:
            averaged[name] = tensor
            kept += 1
    provenance = {"sources": [str(path) for path in paths], "weights": list(shares)}
    if first.kind == "classifier":
        checkpoint = {key: first.checkpoint[key] for key in CLASSIFIER_KEYS}
        checkpoint.update(state_dict=averaged, farz_average=provenance)
    else:
        first.model.load_state_dict(averaged)
        checkpoint = dict(first.checkpoint)
        checkpoint.update(model=first.model, ema=None, optimizer=None, updates=None, farz_average=provenance)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
    return Averaged(out=out, kind=first.kind, tensors=tensors, kept=kept, weights=shares)
