"""Review keeper: which counted tracks are kept (random share, unsure), their crops (native size, masked),
what is sent, and the bound on disk."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np

from device.review_samples import ReviewKeeper, ReviewRules
from vision import Classified, CountEvent, MaterialSettings, PrivacyMask

NAMES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")
SURE = np.array([0.9, 0.02, 0.02, 0.02, 0.02, 0.02], np.float32)
UNSURE = np.array([0.4, 0.35, 0.1, 0.05, 0.05, 0.05], np.float32)


def frame() -> np.ndarray:
    image = np.full((240, 320, 3), 200, np.uint8)
    image[100:160, 100:140] = (0, 0, 255)  # the item: red, 40 x 60 px
    return image


def crop(track: int, p: np.ndarray) -> Classified:
    return Classified(track, np.array([100, 100, 140, 160], np.float32), p)


def count(track: int, cls: str = "cardboard") -> CountEvent:
    return CountEvent("belt-1", NAMES.index(cls), cls, "in", track, 0.9, 10)


def keeper(tmp_path: Path, rate: float = 0.0, mask: PrivacyMask | None = None, **rules: int) -> ReviewKeeper:
    rules_ = ReviewRules(sample_rate=rate, **rules)
    return ReviewKeeper(tmp_path, NAMES, "det@sha256:1", "cls@sha256:2", MaterialSettings(), rules_, mask, seed=3)


def test_sure_tracks_are_kept_only_at_random_and_unsure_ones_always(tmp_path: Path) -> None:
    k = keeper(tmp_path, rate=0.0)
    k.observe(frame(), (crop(1, SURE), crop(2, UNSURE)), 1)
    written = k.counted((count(1), count(2)))
    assert len(written) == 1
    meta = json.loads(written[0].read_text())
    assert meta["kind"] == "unsure" and meta["track_id"] == 2
    assert meta["detector"] == "det@sha256:1" and meta["classifier"] == "cls@sha256:2"
    assert meta["probabilities"]["cardboard"] == 0.4 and meta["line"] == "belt-1"
    everything = keeper(tmp_path / "all", rate=1.0)
    everything.observe(frame(), (crop(1, SURE), crop(2, UNSURE)), 1)
    assert [json.loads(p.read_text())["kind"] for p in everything.counted((count(1), count(2)))] == ["random", "random"]


def test_the_random_share_is_about_the_rate(tmp_path: Path) -> None:
    k = keeper(tmp_path, rate=0.05, max_items=10_000)
    for track in range(2000):
        k.observe(frame(), (crop(track, SURE),), track)
        k.counted((count(track),))
    assert 60 <= k.kept["random"] <= 140 and k.kept["unsure"] == 0


def test_crops_are_native_size_masked_and_at_most_three_and_a_track_is_kept_once(tmp_path: Path) -> None:
    mask = PrivacyMask([((0.3, 0.0), (1.0, 0.0), (1.0, 1.0), (0.3, 1.0))])  # right of x = 96 px: the item is under it
    k = keeper(tmp_path, rate=1.0, mask=mask)
    for f in range(5):
        k.observe(frame(), (crop(7, SURE),), f)
    written = k.counted((count(7), count(7)))
    assert len(written) == 1
    body = k.body(written[0], "cam-1")
    crops = [cv2.imdecode(np.frombuffer(base64.b64decode(c), np.uint8), cv2.IMREAD_COLOR) for c in body["crops"]]  # type: ignore[attr-defined]
    assert len(crops) == 3
    assert all(c.shape == (72, 72, 3) for c in crops)  # 60 px + 10 % each side: native size, not the classifier's 224
    assert all(int(c[20:52, 20:52].max()) < 40 for c in crops)  # the red item lay under the privacy mask: black
    assert body["device_id"] == "cam-1" and "crops" in body and body["counted"] == "cardboard"


def test_at_most_max_items_stay_on_disk_oldest_first_and_a_track_without_crops_is_not_kept(tmp_path: Path) -> None:
    k = keeper(tmp_path, rate=1.0, max_items=3)
    assert k.counted((count(99),)) == []
    for track in range(5):
        k.observe(frame(), (crop(track, SURE),), track)
        k.counted((count(track),))
    assert [json.loads(p.read_text())["track_id"] for p in k.pending()] == [2, 3, 4]
    assert len(list(tmp_path.glob("*.jpg"))) == 3
    k.remove(k.pending()[0])
    assert len(k.pending()) == 2 and len(list(tmp_path.glob("*.jpg"))) == 2


def test_past_the_bound_unsure_items_go_before_random_ones(tmp_path: Path) -> None:
    k = keeper(tmp_path, rate=0.0, max_items=3)
    k.observe(frame(), (crop(1, UNSURE), crop(2, UNSURE)), 1)
    k.counted((count(1), count(2)))  # two unsure items
    k.rules = ReviewRules(sample_rate=1.0, max_items=3)
    k.observe(frame(), (crop(3, SURE), crop(4, SURE)), 2)
    k.counted((count(3), count(4)))  # two random ones: one unsure item must go, the oldest
    kinds = [(json.loads(p.read_text())["kind"], json.loads(p.read_text())["track_id"]) for p in k.pending()]
    assert kinds == [("unsure", 2), ("random", 3), ("random", 4)]
