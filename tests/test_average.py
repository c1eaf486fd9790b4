"""``farz train average``: the weighted mean of runs' weights, refused for runs of another architecture."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from training.average import AverageError, average_checkpoints, normalised_weights
from training.offline import offline_ultralytics


def test_shares_are_equal_by_default_and_scaled_to_sum_to_one() -> None:
    assert normalised_weights(None, 4) == (0.25, 0.25, 0.25, 0.25)
    assert normalised_weights([3, 1], 2) == (0.75, 0.25)
    assert normalised_weights([1, 0], 2) == (1.0, 0.0)
    for weights, count, said in (
        ([0.5], 2, "one per checkpoint"),
        ([-1, 2], 2, "0 or more"),
        ([0, 0], 2, "not all 0"),
        (None, 1, "at least two"),
    ):
        with pytest.raises(AverageError, match=said):
            normalised_weights(weights, count)
    with pytest.raises(AverageError, match="0 or more"):
        normalised_weights([float("nan"), 1], 2)


def checkpoint(path: Path, seed: int, classes: int = 1) -> Path:
    """A yolo26n detector with random weights and BatchNorm statistics, saved as a run's best.pt is: float16 ``model``."""
    offline_ultralytics(path.parent)
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model = DetectionModel("yolo26n.yaml", nc=classes, verbose=False)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                if "running_var" in name:
                    tensor.mul_(1 + 0.2 * torch.rand_like(tensor))
                else:
                    tensor.add_(0.02 * torch.randn_like(tensor))
    torch.save({"model": model.half(), "ema": None, "train_args": {"imgsz": 64}, "epoch": -1}, path)
    return path


def state(path: Path) -> dict[str, object]:
    import torch

    return dict(torch.load(path, map_location="cpu", weights_only=False)["model"].state_dict())


needs_training = pytest.mark.skipif(importlib.util.find_spec("ultralytics") is None, reason="needs the training extra")


@pytest.mark.training
@needs_training
def test_every_float_tensor_is_the_weighted_mean_and_counters_come_from_the_first(tmp_path: Path) -> None:
    import torch

    a, b = checkpoint(tmp_path / "a.pt", 1), checkpoint(tmp_path / "b.pt", 2)
    result = average_checkpoints([a, b], tmp_path / "soup.pt", [3, 1])
    assert result.weights == (0.75, 0.25) and result.tensors > 300 and result.kept > 0
    first, second, soup = state(a), state(b), state(result.out)
    floats = [name for name, tensor in soup.items() if isinstance(tensor, torch.Tensor) and tensor.is_floating_point()]
    assert len(floats) == result.tensors
    for name in floats:
        expected = 0.75 * first[name].float() + 0.25 * second[name].float()  # type: ignore[union-attr]
        assert soup[name].dtype == torch.float16  # type: ignore[union-attr]
        assert torch.allclose(soup[name].float(), expected, atol=2e-3), name  # type: ignore[union-attr]
    assert not torch.equal(soup[floats[0]], first[floats[0]])  # type: ignore[arg-type]
    saved = torch.load(result.out, map_location="cpu", weights_only=False)
    assert saved["farz_average"] == {"sources": [str(a), str(b)], "weights": [0.75, 0.25]} and saved["optimizer"] is None


@pytest.mark.training
@needs_training
def test_a_run_averaged_with_itself_outputs_what_it_did_and_loads_in_ultralytics(tmp_path: Path) -> None:
    import torch
    from ultralytics.nn.tasks import load_checkpoint

    a = checkpoint(tmp_path / "a.pt", 1)
    soup = average_checkpoints([a, a, a], tmp_path / "soup.pt").out
    images = torch.rand(1, 3, 64, 64)
    outputs = []
    for path in (a, soup):
        model, _ = load_checkpoint(str(path), device="cpu", fuse=False)
        outputs.append(model.float().eval()(images)[0])
    assert torch.allclose(outputs[0], outputs[1], atol=1e-3)


def classifier_checkpoint(path: Path, seed: int, names: tuple[str, ...] = ("glass", "metal")) -> Path:
    """A material classifier as `farz train classify-fit` saves it: architecture, classes, crop size, weights."""
    import torch

    from training.classify_model import build_network

    torch.manual_seed(seed)
    net = build_network("efficientnet-lite0", len(names), pretrained=False)
    torch.save({"arch": "efficientnet-lite0", "names": list(names), "imgsz": 64, "state_dict": net.state_dict(), "epoch": 3}, path)
    return path


@pytest.mark.training
@needs_training
def test_classifiers_average_into_a_checkpoint_classify_export_reads(tmp_path: Path) -> None:
    import torch

    a, b = classifier_checkpoint(tmp_path / "a.pt", 1), classifier_checkpoint(tmp_path / "b.pt", 2)
    result = average_checkpoints([a, b], tmp_path / "soup.pt")
    assert result.kind == "classifier" and result.weights == (0.5, 0.5)
    soup = torch.load(result.out, map_location="cpu", weights_only=False)
    assert set(soup) == {"arch", "names", "imgsz", "state_dict", "farz_average"} and soup["names"] == ["glass", "metal"]
    first, second = state_dict(a), state_dict(b)
    for name, tensor in soup["state_dict"].items():
        expected = (first[name].float() + second[name].float()) / 2 if tensor.is_floating_point() else first[name]
        assert torch.allclose(tensor.float(), expected.float(), atol=1e-6), name
    with pytest.raises(AverageError, match="names"):
        average_checkpoints([a, classifier_checkpoint(tmp_path / "c.pt", 3, ("paper", "trash"))], tmp_path / "no.pt")
    with pytest.raises(AverageError, match="a detector"):
        average_checkpoints([a, checkpoint(tmp_path / "d.pt", 1)], tmp_path / "no.pt")


def state_dict(path: Path) -> dict[str, Any]:
    import torch

    return dict(torch.load(path, map_location="cpu", weights_only=False)["state_dict"])


@pytest.mark.training
@needs_training
def test_runs_of_another_architecture_or_not_checkpoints_are_refused_by_the_command(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    one, six = checkpoint(tmp_path / "one.pt", 1), checkpoint(tmp_path / "six.pt", 2, classes=6)
    not_pt = tmp_path / "model.onnx"
    not_pt.write_bytes(b"\x08\x01onnx")
    for args, said in (
        ((one, six), "not one architecture"),
        ((one, not_pt), "not a readable PyTorch checkpoint"),
        ((one, tmp_path / "gone.pt"), "no such checkpoint"),
        ((one,), "at least two"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "farz", "train", "average", *map(str, args), "--out", str(tmp_path / "soup.pt")],
            capture_output=True, text=True, cwd=repo, check=False, timeout=300,
        )  # fmt: skip
        assert run.returncode == 3 and said in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "soup.pt").exists()
