"""``farz train classify-adapt``: teach the material classifier one site's products from its reviewed crops.

The network's features stay as shipped; its last layer (``Gemm``: features (N, F) → logits (N, C)) is
fitted again, by softmax regression started from the shipped weights, on the site's crops (each seen as is,
mirrored and turned a quarter both ways) and on base training photos and belt crops replayed beside them.
The file keeps both layers and a memory of the site crops' features: a crop whose features lie close to a
reviewed site crop (the *gate*) is named by the refitted layer, any other by the shipped one, so items the
site never showed are named as before. The site's crops are split 80/20 by item (a track's crops stay
together): the report's before/after accuracy is of a model fitted on the 80 %; the files are then fitted on
all of them. Writes ``farz-material.onnx`` (FP32), ``farz-material.int8.onnx`` (static INT8 calibrated on
site and base crops: the deployable) and ``report.json``. Needs onnx and onnxruntime, not torch: on the
2-core CPU 1,000 crops take about a minute.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from training.classify_data import IMAGE_SUFFIXES, belt_crop, belt_cutouts, class_folder_images, photo_crop, read_image, shrink
from training.classify_export import quantize_classifier
from training.metadata import read_metadata, set_metadata

MIN_CROPS = 20  # fewer site crops than this teach nothing measurable
TRACK_SUFFIX = re.compile(r"-c\d+$")  # pull-reviews names a track's crops <item>-c0.jpg, <item>-c1.jpg, ...


class AdaptError(ValueError):
    """The input cannot be adapted on; the message says what and where, and what to do."""


@dataclass(frozen=True)
class AdaptRecipe:
    """How the last layer is fitted (measured with ``bench/adapt.py``)."""

    steps: int = 300
    lr: float = 0.05
    anchor: float = 1e-3  # L2 pull towards the shipped weights, per weight
    site_share: float = 0.5  # share of the loss that the site's crops carry (the rest: the replayed base photos)
    replay_per_class: int = 100  # base photos replayed per class
    replay_belt_per_class: int = 100  # belt renders of base training cut-outs replayed per class (when cut-outs are given)
    holdout: float = 0.2
    calibration: int = 200  # INT8 calibration crops, half site, half base
    seed: int = 0
    gate: bool = True  # the refitted layer speaks only for crops that look like a reviewed site crop
    gate_margin: float = 0.05  # cosine by which a crop must lie nearer to a site crop than to any base crop
    gate_width: float = 0.02  # cosine similarity over which the gate goes from a tenth open to nine tenths
    memory_views: int = 2  # views of each fitted site crop kept in the gate's memory (as is, mirrored, ...)
    max_memory: int = 4000  # rows of the memory at most (a random subset beyond)


@dataclass(frozen=True)
class SiteCrop:
    path: Path
    class_id: int
    item: str


def site_crops(data: Path, names: tuple[str, ...]) -> list[SiteCrop]:
    """The images of ``data/<class>/`` (any subset of the classes), each with its item: the manifest's
    ``item`` column when ``manifest.csv`` lies beside them, else the file name without ``-c<k>``."""
    if not data.is_dir():
        raise AdaptError(f"{data}: no such folder (expected one folder of images per class, e.g. from `farz train pull-reviews`)")
    folders = [p for p in sorted(data.iterdir()) if p.is_dir()]
    unknown = [p.name for p in folders if p.name not in names]
    if unknown:
        raise AdaptError(f"{data}: folders {unknown} are not classes of the classifier {list(names)}; rename or remove them")
    items: dict[str, str] = {}
    manifest = data / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="") as f:
            items = {row["file"]: row["item"] for row in csv.DictReader(f) if row.get("file") and row.get("item")}
    crops: list[SiteCrop] = []
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise AdaptError(f"{folder}: no images (.jpg, .png, .webp); remove the folder or add its crops")
        for path in files:
            key = f"{folder.name}/{path.name}"
            crops.append(SiteCrop(path, names.index(folder.name), items.get(key) or TRACK_SUFFIX.sub("", path.stem)))
    if not crops:
        raise AdaptError(f"{data}: no class folders; expected {', '.join(names)} (any of them)")
    return crops


def split_by_item(crops: list[SiteCrop], holdout: float, seed: int) -> tuple[list[SiteCrop], list[SiteCrop]]:
    """(fit, held out): about ``holdout`` of each class's items held out, all crops of an item on one side."""
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for class_id in sorted({c.class_id for c in crops}):
        items = sorted({c.item for c in crops if c.class_id == class_id})
        if len(items) >= 2:
            chosen = rng.permutation(len(items))[: max(1, round(len(items) * holdout))]
            held |= {items[i] for i in chosen}
    return [c for c in crops if c.item not in held], [c for c in crops if c.item in held]


class FeatureModel:
    """The classifier cut before its last layer: crops (N, S, S, 3) uint8 BGR → features (N, F) float32."""

    def __init__(self, model: onnx.ModelProto, threads: int = 0) -> None:
        gemm = last_layer(model)
        cut = onnx.ModelProto()
        cut.CopyFrom(model)
        del cut.graph.output[:]
        cut.graph.output.append(onnx.helper.make_tensor_value_info(gemm.input[0], onnx.TensorProto.FLOAT, None))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(cut.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.imgsz = int(self.session.get_inputs()[0].shape[1])

    def __call__(self, crops: list[np.ndarray], batch: int = 16) -> np.ndarray:
        out = [self.session.run(None, {self.input: np.stack(crops[i : i + batch])})[0] for i in range(0, len(crops), batch)]
        return np.concatenate(out).reshape(len(crops), -1).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def last_layer(model: onnx.ModelProto) -> onnx.NodeProto:
    """The Gemm that makes the logits (the one the Softmax reads)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    softmax = next((n for n in model.graph.node if n.op_type == "Softmax"), None)
    gemm = producers.get(softmax.input[0]) if softmax is not None else None
    if gemm is None or gemm.op_type != "Gemm":
        raise AdaptError("the classifier's last layer is not a Gemm before a Softmax: give the FP32 file (models/farz-material.onnx)")
    return gemm


def head_weights(model: onnx.ModelProto) -> tuple[np.ndarray, np.ndarray]:
    """The last layer's weights (C, F) and bias (C,)."""
    gemm = last_layer(model)
    init = {i.name: i for i in model.graph.initializer}
    if gemm.input[1] not in init or gemm.input[2] not in init:
        raise AdaptError("the classifier's last layer has no plain weights (a quantized file?): give the FP32 file")
    weight = numpy_helper.to_array(init[gemm.input[1]]).astype(np.float64)
    trans_b = next((a.i for a in gemm.attribute if a.name == "transB"), 0)
    return (weight if trans_b else weight.T), numpy_helper.to_array(init[gemm.input[2]]).astype(np.float64)


def set_head(model: onnx.ModelProto, weight: np.ndarray, bias: np.ndarray) -> None:
    gemm = last_layer(model)
    trans_b = next((a.i for a in gemm.attribute if a.name == "transB"), 0)
    for init in model.graph.initializer:
        if init.name == gemm.input[1]:
            init.CopyFrom(numpy_helper.from_array((weight if trans_b else weight.T).astype(np.float32), init.name))
        elif init.name == gemm.input[2]:
            init.CopyFrom(numpy_helper.from_array(bias.astype(np.float32), init.name))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def fit_head(
    features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray, w0: np.ndarray, b0: np.ndarray, recipe: AdaptRecipe
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression (Adam, full batch) from (w0, b0), weighted, pulled towards w0 by ``anchor``."""
    w, b = w0.copy(), b0.copy()
    onehot = np.eye(len(b0))[labels]
    sw = sample_weight / sample_weight.sum()
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    for step in range(1, recipe.steps + 1):
        p = softmax(features @ w.T + b)
        g = (p - onehot) * sw[:, None]
        grads = [g.T @ features + recipe.anchor * (w - w0), g.sum(axis=0)]
        for k, (param, grad) in enumerate(zip((w, b), grads, strict=True)):
            m[k] = 0.9 * m[k] + 0.1 * grad
            v[k] = 0.999 * v[k] + 0.001 * grad * grad
            param -= recipe.lr * (m[k] / (1 - 0.9**step)) / (np.sqrt(v[k] / (1 - 0.999**step)) + 1e-8)
    return w, b


def unit_rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6))


@dataclass(frozen=True)
class Gate:
    """Which crops the refitted layer speaks for: those nearer (cosine) to a reviewed site crop than to any
    replayed base crop, by ``margin``: ``open = sigmoid((max cos to memory - max cos to base - margin) * sharpness)``."""

    memory: np.ndarray  # (K, F) unit rows: features of site crops
    base: np.ndarray  # (B, F) unit rows: features of the replayed base crops
    margin: float
    sharpness: float

    def openness(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0)
        unit = unit_rows(features)
        nearer = (unit @ self.memory.T).max(axis=1) - (unit @ self.base.T).max(axis=1)
        return np.asarray(1 / (1 + np.exp(-(nearer - self.margin) * self.sharpness)))


def make_gate(x_site: np.ndarray, x_base: np.ndarray, recipe: AdaptRecipe) -> Gate | None:
    """A gate whose memory is the site's crops (``memory_views`` of each crop's 4 views) and whose counterweight
    is the replayed base crops; None without base crops (then the refitted layer names every crop)."""
    if not recipe.gate or not len(x_base):
        return None
    rng = np.random.default_rng(recipe.seed)

    def capped(rows: np.ndarray) -> np.ndarray:
        rows = unit_rows(rows)
        return rows[np.sort(rng.permutation(len(rows))[: recipe.max_memory])] if len(rows) > recipe.max_memory else rows

    memory = capped(x_site.reshape(-1, 4, x_site.shape[1])[:, : recipe.memory_views].reshape(-1, x_site.shape[1]))
    sharpness = float(2 * np.log(9) / recipe.gate_width)
    return Gate(memory.astype(np.float32), capped(x_base).astype(np.float32), recipe.gate_margin, sharpness)


def gated(p_base: np.ndarray, p_site: np.ndarray, gate: Gate | None, features: np.ndarray) -> np.ndarray:
    if gate is None:
        return p_site
    return np.asarray(p_base + gate.openness(features)[:, None] * (p_site - p_base))


def build_gated_graph(model: onnx.ModelProto, weight: np.ndarray, bias: np.ndarray, gate: Gate | None) -> None:
    """Put the refitted layer into ``model``: alone (no gate), or beside the shipped one, mixed by the gate."""
    if gate is None:
        set_head(model, weight, bias)
        return
    gemm = last_layer(model)
    softmax_node = next(n for n in model.graph.node if n.op_type == "Softmax")
    output = model.graph.output[0].name
    feature = gemm.input[0]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    inits = [
        numpy_helper.from_array(weight.astype(np.float32), "adapt.weight"),
        numpy_helper.from_array(bias.astype(np.float32), "adapt.bias"),
        numpy_helper.from_array(np.ascontiguousarray(gate.memory.T), "adapt.memory"),
        numpy_helper.from_array(np.ascontiguousarray(gate.base.T), "adapt.base_memory"),
        numpy_helper.from_array(np.array(gate.margin, np.float32), "adapt.margin"),
        numpy_helper.from_array(np.array(gate.sharpness, np.float32), "adapt.sharpness"),
        numpy_helper.from_array(np.array(1e-6, np.float32), "adapt.eps"),
        numpy_helper.from_array(np.array([1], np.int64), "adapt.axes"),
    ]
    model.graph.initializer.extend(inits)
    softmax_node.output[0] = "adapt.p_base"
    n = onnx.helper.make_node

    def reduce(op: str, x: str, y: str) -> onnx.NodeProto:
        if opset >= 18:
            return n(op, [x, "adapt.axes"], [y], keepdims=1)
        return n(op, [x], [y], axes=[1], keepdims=1)

    model.graph.node.extend(
        [
            n("Gemm", [feature, "adapt.weight", "adapt.bias"], ["adapt.logits"], transB=1),
            n("Softmax", ["adapt.logits"], ["adapt.p_site"], axis=1),
            reduce("ReduceL2", feature, "adapt.norm"),
            n("Add", ["adapt.norm", "adapt.eps"], ["adapt.norm_eps"]),
            n("Div", [feature, "adapt.norm_eps"], ["adapt.unit"]),
            n("MatMul", ["adapt.unit", "adapt.memory"], ["adapt.similarity"]),
            reduce("ReduceMax", "adapt.similarity", "adapt.nearest"),
            n("MatMul", ["adapt.unit", "adapt.base_memory"], ["adapt.base_similarity"]),
            reduce("ReduceMax", "adapt.base_similarity", "adapt.nearest_base"),
            n("Sub", ["adapt.nearest", "adapt.nearest_base"], ["adapt.nearer"]),
            n("Sub", ["adapt.nearer", "adapt.margin"], ["adapt.over"]),
            n("Mul", ["adapt.over", "adapt.sharpness"], ["adapt.scaled"]),
            n("Sigmoid", ["adapt.scaled"], ["adapt.open"]),
            n("Sub", ["adapt.p_site", "adapt.p_base"], ["adapt.delta"]),
            n("Mul", ["adapt.open", "adapt.delta"], ["adapt.shift"]),
            n("Add", ["adapt.p_base", "adapt.shift"], [output]),
        ]
    )


def adapt_head(
    x_site: np.ndarray, y_site: np.ndarray, x_base: np.ndarray, y_base: np.ndarray, w0: np.ndarray, b0: np.ndarray, recipe: AdaptRecipe
) -> tuple[np.ndarray, np.ndarray, Gate | None]:
    """The refitted last layer (weights (C, F), bias (C,)) and its gate, from site views (4 a crop) and base views."""
    x = np.concatenate([x_site, x_base]).astype(np.float64)
    y = np.concatenate([y_site, y_base]).astype(np.int64)
    share = recipe.site_share if len(x_base) else 1.0
    weights = np.concatenate([np.full(len(x_site), share / len(x_site)), np.full(len(x_base), (1 - share) / max(len(x_base), 1))])
    w, b = fit_head(x, y, weights, w0, b0, recipe)
    return w, b, make_gate(x_site, x_base, recipe)


def views(crop: np.ndarray) -> list[np.ndarray]:
    """A crop as is, mirrored and turned a quarter both ways (an item on a belt lies any way round)."""
    return [crop, crop[:, ::-1], np.rot90(crop, 1), np.rot90(crop, 3)]


def data_hash(crops: list[SiteCrop]) -> str:
    digest = hashlib.sha256()
    for c in sorted(crops, key=lambda c: str(c.path)):
        digest.update(f"{c.path.parent.name}/{c.path.name}:{c.path.stat().st_size}\n".encode())
    return digest.hexdigest()


def run_classifier(model: Path, crops: list[np.ndarray], batch: int = 16) -> np.ndarray:
    """Probabilities (N, C) of a classifier file on crops (S, S, 3) uint8 BGR."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: np.stack(crops[i : i + batch])})[0] for i in range(0, len(crops), batch)])


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float | None:
    return round(float((probabilities.argmax(axis=1) == labels).mean()), 4) if len(labels) else None


def classify_adapt(
    data: Path,
    out: Path,
    base: Path,
    replay: Path | None,
    site: str = "",
    replay_cutouts: Path | None = None,
    recipe: AdaptRecipe | None = None,
    min_crops: int = MIN_CROPS,
    threads: int = 0,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, object]:
    """Fit the last layer on ``data`` (+ ``replay``'s train-split photos), write the models and the report; returns the report."""
    recipe = recipe or AdaptRecipe()
    started = time.perf_counter()
    if not base.is_file():
        raise AdaptError(f"{base}: no such model file")
    try:
        meta = read_metadata(base)
    except Exception as exc:
        raise AdaptError(f"{base}: not an ONNX model ({type(exc).__name__})") from exc
    if meta.get("task") != "classify":
        raise AdaptError(f"{base}: a {meta.get('task') or 'non-classifier'} model; --from takes a material classifier (FP32 .onnx)")
    names = tuple(json.loads(meta["names"]))
    crops = site_crops(data, names)
    if len(crops) < min_crops:
        raise AdaptError(f"{data}: {len(crops)} crops; adapting needs at least {min_crops} (review more items, then pull again)")
    model = onnx.load(str(base))
    w0, b0 = head_weights(model)
    features_of = FeatureModel(model, threads)
    size = features_of.imgsz

    def load(path: Path) -> np.ndarray:
        try:
            return photo_crop(shrink(read_image(path), 4 * size), size, None)
        except Exception as exc:
            raise AdaptError(f"{path}: not a readable image; remove it or replace it") from exc

    fit, held = split_by_item(crops, recipe.holdout, recipe.seed)
    progress(f"{len(crops)} site crops of {len({c.item for c in crops})} items: {len(fit)} to fit, {len(held)} held out by item")
    fit_images = [load(c.path) for c in fit]
    held_images = [load(c.path) for c in held]
    x_site = features_of([v for image in fit_images for v in views(image)])
    y_site = np.repeat([c.class_id for c in fit], 4)
    x_held_views = features_of([v for image in held_images for v in views(image)]) if held else np.zeros((0, w0.shape[1]), np.float32)
    x_held = x_held_views[::4]  # each held-out crop as it is
    y_held = np.array([c.class_id for c in held], np.int64)
    progress(f"site features: {len(x_site) + len(x_held_views)} views")
    base_images: list[np.ndarray] = []
    y_base = np.zeros(0, np.int64)
    if replay is not None:
        rng = np.random.default_rng(recipe.seed)
        listed = class_folder_images(replay, names, "train")
        chosen: list[tuple[Path, int]] = []
        for class_id in range(len(names)):
            of_class = [p for p in listed if p[1] == class_id]
            picks = rng.permutation(len(of_class))[: recipe.replay_per_class]
            chosen += [of_class[i] for i in sorted(picks)]
        base_images = [photo_crop(shrink(read_image(p), 320), size, None) for p, _ in chosen]
        y_base = np.array([c for _, c in chosen], np.int64)
    cutouts = belt_cutouts(replay_cutouts, names, "train") if replay_cutouts is not None else []
    if cutouts and recipe.replay_belt_per_class:
        rng = np.random.default_rng(recipe.seed + 1)
        for class_id in range(len(names)):
            of_class = [c for c in cutouts if c.class_id == class_id]
            for _ in range(recipe.replay_belt_per_class if of_class else 0):
                base_images.append(belt_crop(of_class[int(rng.integers(len(of_class)))], cutouts, size, rng))
                y_base = np.append(y_base, class_id)
    x_base = features_of([v for image in base_images for v in views(image)[:2]]) if base_images else np.zeros((0, w0.shape[1]))
    y_base = np.repeat(y_base, 2)
    progress(f"base features: {len(x_base)} views of {len(base_images)} replayed photos and belt crops")
    w, b, gate = adapt_head(x_site, y_site, x_base, y_base, w0, b0, recipe)  # on 80 %: the report's figures
    before = accuracy(softmax(x_held @ w0.T + b0), y_held)
    after = accuracy(gated(softmax(x_held @ w0.T + b0), softmax(x_held @ w.T + b), gate, x_held), y_held)
    gate_held = round(float((gate.openness(x_held) > 0.5).mean()), 4) if gate is not None and len(x_held) else None
    opens = f"the gate lets {gate_held} of them through" if gate is not None else "no gate: no base data was replayed to set it by"
    progress(f"held-out site crops: {before} before, {after} after; {opens}")
    if held:  # the files: every site crop, held-out ones included
        y_all = np.concatenate([y_site, np.repeat(y_held, 4)])
        w, b, gate = adapt_head(np.concatenate([x_site, x_held_views]), y_all, x_base, y_base, w0, b0, recipe)
    fp32_final = gated(softmax(x_held @ w0.T + b0), softmax(x_held @ w.T + b), gate, x_held)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".adapt-", dir=out.parent))  # moved to ``out`` only when all is written
    try:
        fp32, int8 = staging / "farz-material.onnx", staging / "farz-material.int8.onnx"
        build_gated_graph(model, w, b, gate)
        onnx.save(model, str(fp32))
        base_id = f"{meta.get('farz_name') or base.stem}@sha256:{hashlib.sha256(base.read_bytes()).hexdigest()[:12]}"
        digest = data_hash(crops)
        set_metadata(
            fp32,
            {
                "farz_name": f"farz-material-{site}" if site else "farz-material-adapted",
                "base_model": base_id,
                "site": site,
                "site_crops": str(len(crops)),
                "data_hash": digest,
                "metrics": json.dumps({"site_held_out": {"before": before, "after": after}, "adapted_on": len(crops)}),
            },
        )
        site_images = fit_images + held_images
        step = max(1, len(site_images) // max(1, recipe.calibration // 2))
        calibration = site_images[::step][: recipe.calibration // 2]
        calibration += base_images[: recipe.calibration - len(calibration)]
        progress(f"quantizing to INT8, calibrated on {len(calibration)} crops")
        quantize_classifier(fp32, int8, calibration)
        int8_agrees = round(float((run_classifier(int8, held_images).argmax(1) == fp32_final.argmax(1)).mean()), 4) if held else None
        counts = np.bincount([c.class_id for c in crops], minlength=len(names))
        report: dict[str, object] = {
            "base_model": base_id,
            "site": site,
            "crops": len(crops),
            "items": len({c.item for c in crops}),
            "crops_per_class": {names[k]: int(n) for k, n in enumerate(counts) if n},
            "fit_crops": len(fit),
            "held_out_crops": len(held),
            "held_out_accuracy": {"before": before, "after": after},
            "int8_agrees_with_fp32": int8_agrees,
            "replayed_base_crops": len(base_images),
            "gate": None
            if gate is None
            else {"memory": len(gate.memory), "base": len(gate.base), "margin": gate.margin, "held_out_site_crops_through": gate_held},
            "recipe": recipe.__dict__,
            "data_hash": digest,
        }
        out.mkdir(parents=True, exist_ok=True)
        for path in (fp32, int8):
            path.replace(out / path.name)
    finally:
        for left in staging.glob("*"):
            left.unlink()
        staging.rmdir()
    fp32, int8 = out / "farz-material.onnx", out / "farz-material.int8.onnx"
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["files"] = {"fp32": str(fp32), "int8": str(int8)}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    progress(f"wrote {fp32}, {int8} and report.json in {report['seconds']} s")
    return report
