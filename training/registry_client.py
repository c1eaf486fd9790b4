"""``farz train register``, ``pull-samples`` and ``pull-reviews``: the data scientists' side of the model registry."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from training.taxonomy import Taxonomy
from vision import Classifier, OnnxDetector


class RegistryError(RuntimeError):
    """The server refused a request; the message carries its answer."""


def _request(url: str, token: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> object:
    request = urllib.request.Request(
        url, data=data, method="POST" if data is not None else "GET", headers={"Authorization": f"Bearer {token}", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise RegistryError(f"{url}: HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}") from exc
    except urllib.error.URLError as exc:
        raise RegistryError(f"{url}: cannot reach the server ({exc.reason})") from exc


def model_card(model: Path, metrics: dict[str, object] | None = None) -> dict[str, object]:
    """The card of an ONNX model (a detector or a material classifier): name, sha256, task, classes, input
    size, taxonomy version and metrics."""
    from training.metadata import read_metadata

    if read_metadata(model).get("task") == "classify":
        classifier = Classifier(model).info
        stored = json.loads(classifier.metadata.get("metrics", "{}") or "{}")
        version = classifier.metadata.get("taxonomy_version", "")
        return {
            "name": classifier.metadata.get("farz_name") or model.stem,
            "sha256": classifier.sha256,
            "task": "classify",
            "classes": list(classifier.names),
            "imgsz": [classifier.imgsz, classifier.imgsz],
            "taxonomy_version": int(version) if version.isdigit() else None,
            "metrics": {**stored, **(metrics or {})},
            "quantization": classifier.metadata.get("quantization", ""),
        }
    detector = OnnxDetector(model)
    info = detector.info
    stored = json.loads(info.metadata.get("metrics", "{}") or "{}")
    return {
        "name": info.metadata.get("farz_name") or model.stem,
        "sha256": info.sha256,
        "task": "detect",
        "classes": list(info.names),
        "imgsz": list(info.imgsz),
        "taxonomy_version": int(info.metadata["taxonomy_version"]) if info.metadata.get("taxonomy_version", "").isdigit() else None,
        "metrics": {**stored, **(metrics or {})},
        "quantization": info.metadata.get("quantization", ""),
    }


def register(model: Path, server: str, token: str, metrics: dict[str, object] | None = None) -> dict[str, object]:
    """Upload ``model`` with its card; returns the server's record (id, sha256, …)."""
    card = model_card(model, metrics)
    header = base64.b64encode(json.dumps(card).encode()).decode()
    answer = _request(
        f"{server.rstrip('/')}/api/v1/models",
        token,
        model.read_bytes(),
        {"Content-Type": "application/octet-stream", "X-Farz-Model-Card": header},
    )
    assert isinstance(answer, dict)
    return answer


def pull_samples(server: str, token: str, site: str, out: Path, taxonomy: Taxonomy, page: int = 100) -> int:
    """Write a site's hard samples as a YOLO dataset (images/train, labels/train, data.yaml); returns how many."""
    (out / "images" / "train").mkdir(parents=True, exist_ok=True)
    (out / "labels" / "train").mkdir(parents=True, exist_ok=True)
    written = 0
    offset = 0
    while True:
        query = urllib.parse.urlencode({"site": site, "with_images": "true", "limit": page, "offset": offset})
        samples = _request(f"{server.rstrip('/')}/api/v1/samples?{query}", token)
        assert isinstance(samples, list)
        for s in samples:
            stem = f"{site}-{s['device_id']}-{s['id']:06d}"
            (out / "images" / "train" / f"{stem}.jpg").write_bytes(base64.b64decode(s["image_jpeg_b64"]))
            w, h = float(s["width"]), float(s["height"])
            rows = []
            for d in s["detections"]:
                name = taxonomy.map_label(d["class"])
                if name is None:
                    continue
                x1, y1, x2, y2 = d["xyxy"]
                rows.append(
                    f"{taxonomy.index(name)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
                )
            (out / "labels" / "train" / f"{stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
            written += 1
        if len(samples) < page:
            break
        offset += page
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(taxonomy.names))
    (out / "data.yaml").write_text(
        f"# hard samples of site {site}: pre-labels from the device's model, to be checked by a person\n"
        f"path: {out.resolve()}\ntrain: images/train\nnames:\n{names}"
    )
    return written


def pull_reviews(server: str, token: str, site: str, out: Path) -> dict[str, int]:
    """Unpack a site's labelled review crops into ``out`` (``<class>/*.jpg`` + ``manifest.csv``); crops per class."""
    import io
    import zipfile

    url = f"{server.rstrip('/')}/api/v1/reviews/export?{urllib.parse.urlencode({'site': site})}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise RegistryError(f"{url}: HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}") from exc
    except urllib.error.URLError as exc:
        raise RegistryError(f"{url}: cannot reach the server ({exc.reason})") from exc
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile as exc:
        raise RegistryError(f"{url}: the answer is not a zip archive") from exc
    counts: dict[str, int] = {}
    out.mkdir(parents=True, exist_ok=True)
    for name in archive.namelist():
        parts = Path(name).parts
        safe = name == "manifest.csv" or (len(parts) == 2 and parts[1].endswith(".jpg") and ".." not in parts and not name.startswith("/"))
        if not safe:
            raise RegistryError(f"{url}: unexpected entry {name!r} in the archive")
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(archive.read(name))
        if name != "manifest.csv":
            counts[parts[0]] = counts.get(parts[0], 0) + 1
    return dict(sorted(counts.items()))
