"""``farz train average``: one detector whose weights are the weighted mean of several runs' (a weight soup).

Runs fine-tuned from one starting point stay in one basin of the loss, so the mean of their weights is a
working model that keeps much of what each run learned (Wortsman et al., *Model soups*, ICML 2022; *Robust
fine-tuning of zero-shot models*, CVPR 2022): a run that made the detector robust to poor pictures, averaged
with the run it started from, gains most of the robustness and loses less of the old behaviour. Only runs of
one architecture average: every tensor must match by name and shape. BatchNorm statistics are averaged like
the weights. The result is an Ultralytics ``.pt`` for ``farz train export`` (or a config's ``init:``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.offline import offline_ultralytics


class AverageError(ValueError):
    """The checkpoints or weights cannot be averaged; the message says which file or tensor and why."""


@dataclass(frozen=True)
class Averaged:
    """What :func:`average_checkpoints` wrote."""

    out: Path
    tensors: int  # floating-point tensors averaged (weights and BatchNorm statistics)
    kept: int  # integer tensors copied from the first checkpoint (BatchNorm batch counters)
    weights: tuple[float, ...]  # each checkpoint's share, summing to 1


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


def _load(path: Path) -> dict[str, Any]:
    import torch

    if not path.is_file():
        raise AverageError(f"{path}: no such checkpoint (a run's weights/best.pt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise AverageError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    model = None
    if isinstance(checkpoint, dict):
        model = checkpoint["ema"] if checkpoint.get("ema") is not None else checkpoint.get("model")
    if model is None or not hasattr(model, "state_dict"):
        raise AverageError(f"{path}: not an Ultralytics checkpoint (no model in it)")
    return {"checkpoint": checkpoint, "model": model}


def average_checkpoints(paths: Sequence[Path], out: Path, weights: Sequence[float] | None = None) -> Averaged:
    """Write ``out``: the first checkpoint with every floating-point tensor replaced by the weighted mean.

    Means are taken in float32 and stored in each tensor's own dtype (a run's ``best.pt`` holds float16).
    """
    shares = normalised_weights(weights, len(paths))
    offline_ultralytics(out.parent)
    import torch

    loaded = [_load(path) for path in paths]
    states = [entry["model"].state_dict() for entry in loaded]
    first = states[0]
    for path, state in zip(paths[1:], states[1:], strict=True):
        missing = sorted(set(first) ^ set(state))
        if missing:
            raise AverageError(f"{path}: not the architecture of {paths[0]} (tensor {missing[0]!r} is in one only)")
        for name, tensor in first.items():
            if tuple(state[name].shape) != tuple(tensor.shape):
                raise AverageError(
                    f"{path}: tensor {name!r} is {tuple(state[name].shape)}, {tuple(tensor.shape)} in {paths[0]}: not one architecture"
                )
    averaged: dict[str, torch.Tensor] = {}
    tensors = kept = 0
    for name, tensor in first.items():
        if tensor.is_floating_point():
            mean = sum(share * state[name].float() for share, state in zip(shares, states, strict=True))
            averaged[name] = torch.as_tensor(mean).to(tensor.dtype)
            tensors += 1
        else:
            averaged[name] = tensor
            kept += 1
    model = loaded[0]["model"]
    model.load_state_dict(averaged)
    checkpoint = dict(loaded[0]["checkpoint"])
    checkpoint.update(
        model=model,
        ema=None,
        optimizer=None,
        updates=None,
        farz_average={"sources": [str(path) for path in paths], "weights": list(shares)},
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
    return Averaged(out=out, tensors=tensors, kept=kept, weights=shares)
