"""A trainable material classifier rebuilt from its exported FP32 ONNX file (``init: models/farz-material.onnx``).

Only ONNX files travel to devices and into the repository's history; a run folder's ``best.pt`` may be gone.
To fine-tune the shipped classifier further (more epochs, a site's new photos, a GPU sitting), its PyTorch
weights are rebuilt: the architecture named in the file's metadata, every convolution's weights from the
ONNX node of the same module path, and the head from ``net._fc``. Export folds each BatchNorm into its
convolution (``W·x + b``); the BatchNorm is given back as the identity *on the data*: its running mean
``μ`` and variance ``σ²`` are measured on calibration crops, and its scale ``sqrt(σ² + ε)`` and shift
``b + μ`` make ``BN(W·x) = W·x + b`` exactly in eval mode and nearly so with batch statistics in training.
The rebuilt network's probabilities equal the ONNX file's to float rounding (checked on those crops).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.classify_data import photo_crop
from training.classify_export import ClassifierFileError
from training.classify_model import ARCHITECTURES, build_network, to_network_input

TOLERANCE = 1e-3  # largest |ONNX − PyTorch| probability accepted


def _load(path: Path) -> tuple[dict[str, str], dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """The file's metadata; per module path (``_blocks.3._depthwise_conv``) the folded (weight, bias); and
    every initializer. Refuses a file that is unreadable, not a classifier or quantized."""
    import onnx
    from onnx import numpy_helper

    if not path.is_file():
        raise ClassifierFileError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise ClassifierFileError(f"{path}: not a readable ONNX file ({exc})") from exc
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("task") != "classify":
        raise ClassifierFileError(f"{path}: not a classifier (task {meta.get('task')!r}); init from a classify-export file")
    if any(n.op_type in {"DequantizeLinear", "QLinearConv"} for n in model.graph.node):
        raise ClassifierFileError(f"{path}: an INT8 file; start from the FP32 export (farz-material.onnx), not the quantized one")
    tensors = {t.name: numpy_helper.to_array(t).copy() for t in model.graph.initializer}
    convs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for node in model.graph.node:
        if node.op_type == "Conv" and node.name.startswith("/net/") and len(node.input) == 3:
            module = node.name.removeprefix("/net/").removesuffix("/Conv").replace("/", ".")
            convs[module] = (tensors[node.input[1]], tensors[node.input[2]])
    return meta, convs, tensors


def recover_classifier(path: Path, names: tuple[str, ...], arch: str, photos: Sequence[np.ndarray]) -> tuple[nn.Module, float]:
    """The ``arch`` network of the FP32 classifier ``path``, its BatchNorm statistics measured on ``photos``
    (BGR uint8, each cropped whole at the file's own crop size), and the largest probability difference to
    the file on those crops. ``ClassifierFileError`` if it is no FP32 ``arch`` classifier of ``names``."""
    from vision import Classifier

    meta, convs, tensors = _load(path)
    if meta.get("arch", "") != arch or arch not in ARCHITECTURES:
        raise ClassifierFileError(
            f"{path}: a {meta.get('arch')!r} classifier; the recipe trains {arch} (farz trains {sorted(ARCHITECTURES)})"
        )
    exported = Classifier(path, threads=1)
    crops = np.stack([photo_crop(image, exported.imgsz, None) for image in photos])
    net = build_network(arch, len(names), pretrained=False).eval()
    conv_modules = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    bn_modules = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if set(convs) != {n for n, _ in conv_modules} or len(bn_modules) != len(conv_modules):
        raise ClassifierFileError(f"{path}: its convolutions are not those of {arch} ({len(convs)} vs {len(conv_modules)})")
    folded_bias: list[torch.Tensor] = []
    with torch.no_grad():
        for (name, conv), bn in zip(conv_modules, bn_modules, strict=True):
            weight, bias = convs[name]
            if tuple(conv.weight.shape) != weight.shape or bn.num_features != bias.shape[0]:
                raise ClassifierFileError(f"{path}: {name} is {weight.shape}, {arch} has {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(weight))
            bn.running_mean.zero_()  # type: ignore[union-attr]
            bn.running_var.fill_(1.0 - bn.eps)  # type: ignore[union-attr]
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(bias))
            folded_bias.append(bn.bias.clone())
        fc = net._fc  # type: ignore[union-attr]
        fc_weight, fc_bias = tensors.get("net._fc.weight"), tensors.get("net._fc.bias")
        if fc_weight is None or fc_bias is None or tuple(fc.weight.shape) != fc_weight.shape:
            raise ClassifierFileError(f"{path}: its head does not fit {len(names)} classes of {arch}")
        fc.weight.copy_(torch.from_numpy(fc_weight))
        fc.bias.copy_(torch.from_numpy(fc_bias))
        _measure_batchnorm(net, bn_modules, folded_bias, crops)
        ours = torch.softmax(net(to_network_input(torch.from_numpy(crops))), dim=1).numpy()
    theirs = exported.predict(crops)
    difference = float(np.abs(ours - theirs).max())
    if difference > TOLERANCE:
        raise ClassifierFileError(f"{path}: the rebuilt network differs from the file by {difference:.2g} in probability")
    return net, difference


def _measure_batchnorm(net: nn.Module, bns: list[nn.BatchNorm2d], biases: list[torch.Tensor], crops: np.ndarray) -> None:
    """Give every BatchNorm the mean and variance of its input over ``crops`` and keep it the identity + bias."""
    sums: dict[int, list[torch.Tensor]] = {}

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].double()
        k = id(module)
        s = sums.setdefault(k, [torch.zeros(x.shape[1], dtype=torch.float64), torch.zeros(x.shape[1], dtype=torch.float64), torch.zeros(1)])
        s[0] += x.sum(dim=(0, 2, 3))
        s[1] += (x * x).sum(dim=(0, 2, 3))
        s[2] += x.shape[0] * x.shape[2] * x.shape[3]

    handles = [bn.register_forward_pre_hook(hook) for bn in bns]
    for start in range(0, len(crops), 16):
        net(to_network_input(torch.from_numpy(crops[start : start + 16])))
    for handle in handles:
        handle.remove()
    for bn, bias in zip(bns, biases, strict=True):
        total, squares, n = sums[id(bn)]
        mean = total / n
        var = (squares / n - mean * mean).clamp(min=1e-6)
        bn.running_mean.copy_(mean.float())  # type: ignore[union-attr]
        bn.running_var.copy_(var.float())  # type: ignore[union-attr]
        bn.weight.copy_(torch.sqrt(var + bn.eps).float())
        bn.bias.copy_(bias + mean.float())
