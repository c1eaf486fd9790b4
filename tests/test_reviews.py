"""Review items on the server (SQLite and PostgreSQL): devices send them, reviewers label them (one or two
each), scientists export the labelled crops, and the trust figures match a hand computation."""

from __future__ import annotations

import base64
import csv
import io
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from server_fixtures import BACKENDS, World, build_world, event, fresh_postgres_url, postgres_available

from server import trust
from server.reviews import needs_two

CLASSES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")


def jpeg(seed: int, side: int = 40) -> str:
    image = np.random.default_rng(seed).integers(0, 255, (side, side, 3), np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def review(device: str, counted: str = "plastic", kind: str = "random", crops: int = 2, item_id: str | None = None) -> dict[str, object]:
    p = {c: 0.02 for c in CLASSES}
    p[counted] = 0.9
    return {
        "device_id": device,
        "item_id": item_id or uuid.uuid4().hex[:16],
        "ts": datetime.now(UTC).isoformat(),
        "line": "belt-1",
        "track_id": 7,
        "counted": counted,
        "probabilities": p,
        "kind": kind,
        "detector": "farz-waste@sha256:aaaaaaaaaaaa",
        "classifier": "farz-material@sha256:bbbbbbbbbbbb",
        "crops": [jpeg(k) for k in range(crops)],
    }


def make_world(backend: str, tmp_path: Path, settings: dict[str, object] | None = None) -> World:
    if backend == "postgresql":
        if not postgres_available():
            pytest.skip("no PostgreSQL (.ci/run starts one)")
        return build_world(fresh_postgres_url(), settings)
    return build_world(f"sqlite:///{tmp_path / 'farz.db'}", settings)


@pytest.fixture(params=BACKENDS)
def single(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world where every item needs one label."""
    w = make_world(request.param, tmp_path, {"review_double_share": 0.0})
    with w.client:
        yield w


def send(w: World, body: dict[str, object], role: str = "cam-1") -> int:
    return int(w.client.post("/api/v1/reviews", json=body, headers=w.headers(role)).status_code)


def label(w: World, item: int, value: str, role: str = "reviewer") -> dict[str, object]:
    r = w.client.post(f"/api/v1/reviews/{item}/label", json={"label": value}, headers=w.headers(role))
    assert r.status_code == 200, r.text
    return dict(r.json())


def queue(w: World, role: str = "reviewer", limit: int = 50) -> list[dict[str, object]]:
    r = w.client.get(f"/api/v1/reviews/next?limit={limit}", headers=w.headers(role))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_a_device_sends_an_item_once_and_a_reviewer_sees_its_crops_and_the_guess(single: World) -> None:
    body = review("cam-1", "glass", crops=3)
    assert send(single, body) == 201
    again = single.client.post("/api/v1/reviews", json=body, headers=single.headers("cam-1")).json()
    assert again["stored"] is False
    items = queue(single)
    assert len(items) == 1
    assert items[0]["guess"] == "glass"
    assert len(items[0]["crops"]) == 3 and all(str(c).startswith("data:image/jpeg;base64,") for c in items[0]["crops"])  # type: ignore[attr-defined]


def test_bad_review_bodies_get_a_4xx_that_says_what(single: World) -> None:
    body = review("cam-1")
    assert send(single, {**body, "crops": [base64.b64encode(b"GIF89a").decode()]}) == 422
    assert send(single, {**body, "crops": ["***"]}) == 422
    assert send(single, {**body, "crops": []}) == 422
    r = single.client.post("/api/v1/reviews", json={**body, "counted": "wood"}, headers=single.headers("cam-1"))
    assert r.status_code == 422 and "wood" in r.text
    assert send(single, body, role="cam-2") == 403  # a device writes only for itself
    assert send(single, body, role="reviewer") == 403


def test_reviewers_see_only_their_site_and_nothing_else(single: World) -> None:
    send(single, review("cam-1"))
    send(single, review("cam-9"), role="cam-9")
    assert len(queue(single, "reviewer")) == 1
    assert len(queue(single, "reviewer-oujda")) == 1
    item = queue(single, "reviewer")[0]["id"]
    r = single.client.post(f"/api/v1/reviews/{item}/label", json={"label": "paper"}, headers=single.headers("reviewer-oujda"))
    assert r.status_code == 403
    assert single.client.get("/api/v1/sites", headers=single.headers("reviewer")).json() == []
    for path in ("/api/v1/counts?site=berkane-c1", "/api/v1/samples?site=berkane-c1", "/api/v1/sites/berkane-c1/summary"):
        assert single.client.get(path, headers=single.headers("reviewer")).status_code == 403, path
    assert single.client.get("/api/v1/reviews/export?site=berkane-c1", headers=single.headers("reviewer")).status_code == 403
    assert single.client.get("/api/v1/reviews/accuracy?site=berkane-c1", headers=single.headers("reviewer")).status_code == 403
    assert single.client.get("/api/v1/reviews/accuracy?site=berkane-c1", headers=single.headers("scientist")).status_code == 200
    assert single.client.get("/api/v1/reviews/next", headers=single.headers("viewer")).status_code == 403


def test_a_label_takes_the_item_off_the_queue_and_undo_puts_it_back(single: World) -> None:
    send(single, review("cam-1", "paper"))
    item = int(queue(single)[0]["id"])  # type: ignore[call-overload]
    assert label(single, item, "cardboard")["status"] == "done"
    assert queue(single) == []
    r = single.client.delete(f"/api/v1/reviews/{item}/label", headers=single.headers("reviewer"))
    assert r.status_code == 200 and r.json()["status"] == "open"
    assert [i["id"] for i in queue(single)] == [item]
    r = single.client.post(f"/api/v1/reviews/{item}/label", json={"label": "wood"}, headers=single.headers("reviewer"))
    assert r.status_code == 422
    assert single.client.delete(f"/api/v1/reviews/{item}/label", headers=single.headers("reviewer-2")).status_code == 404


@pytest.mark.parametrize("backend", BACKENDS)
def test_items_shown_to_two_reviewers_report_their_agreement_and_a_disagreement_goes_to_a_third(backend: str, tmp_path: Path) -> None:
    w = make_world(backend, tmp_path, {"review_double_share": 1.0})
    with w.client:
        for _ in range(3):
            send(w, review("cam-1", "metal"))
        first = [int(i["id"]) for i in queue(w, "reviewer")]  # type: ignore[call-overload]
        for item in first:
            assert label(w, item, "metal")["status"] == "open"  # needs a second reviewer
        assert queue(w, "reviewer") == []  # never the same item twice to one reviewer
        alone = w.client.get("/api/v1/reviews/status", headers=w.headers("reviewer")).json()["agreement"]
        assert alone["items"] == 0 and alone["agreed"] == 0  # one label each: nothing to agree on yet
        assert [int(i["id"]) for i in queue(w, "reviewer-2")] == first  # type: ignore[call-overload]
        assert label(w, first[0], "metal", "reviewer-2")["final"] == "metal"
        assert label(w, first[1], "metal", "reviewer-2")["status"] == "done"
        assert label(w, first[2], "glass", "reviewer-2")["status"] == "open"  # 1 against 1: a third opinion
        assert label(w, first[2], "glass", "admin")["final"] == "glass"
        status = w.client.get("/api/v1/reviews/status", headers=w.headers("reviewer")).json()
        assert status["agreement"]["items"] == 3 and status["agreement"]["agreed"] == 2
        assert status["done"] == 3 and status["open"] == 0
        assert "Amina" in status["reviewer"]


def test_the_double_review_share_is_about_the_setting() -> None:
    chosen = sum(needs_two(f"cam-1/{k}", 0.1) for k in range(5000))
    assert 400 < chosen < 600


def test_export_is_one_folder_per_class_with_a_manifest(single: World) -> None:
    for counted in ("plastic", "glass", "paper"):
        send(single, review("cam-1", counted, crops=2))
    items = queue(single)
    label(single, int(items[0]["id"]), "plastic")  # type: ignore[call-overload]
    label(single, int(items[1]["id"]), "metal")  # type: ignore[call-overload]
    label(single, int(items[2]["id"]), "not_item")  # type: ignore[call-overload]
    r = single.client.get("/api/v1/reviews/export?site=berkane-c1", headers=single.headers("scientist"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = sorted(archive.namelist())
    assert [n.split("/")[0] for n in names if n.endswith(".jpg")] == ["metal", "metal", "plastic", "plastic"]
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert len(rows) == 4
    assert {r["class"] for r in rows} == {"metal", "plastic"}
    assert all(r["reviewers"].startswith("Amina (reviewer #") and r["kind"] == "random" for r in rows)
    assert all(archive.read(r["file"]).startswith(b"\xff\xd8") for r in rows)


def test_accuracy_and_the_adjusted_composition_match_a_hand_computation(single: World) -> None:
    # Random items: 8 plastic right, 2 plastic called paper; 5 paper right. An unsure item never counts.
    truth_counted = [("plastic", "plastic")] * 8 + [("plastic", "paper")] * 2 + [("paper", "paper")] * 5
    for _, counted in truth_counted:
        send(single, review("cam-1", counted))
    send(single, review("cam-1", "glass", kind="unsure"))
    items = {int(i["id"]): i for i in queue(single)}  # type: ignore[call-overload]
    random_ids = sorted(items)[: len(truth_counted)]
    for item, (true, counted) in zip(random_ids, truth_counted, strict=True):
        assert items[item]["guess"] == counted
        label(single, item, true)
    label(single, sorted(items)[-1], "plastic")  # the unsure glass item: really plastic
    r = single.client.get("/api/v1/reviews/accuracy", headers=single.headers("viewer")).json()
    assert r["items"] == 15
    assert r["accuracy"]["value"] == pytest.approx(13 / 15, abs=1e-4)
    low = trust.wilson(13, 15)
    assert r["accuracy"]["low"] == pytest.approx(low.low, abs=1e-4)
    assert r["recall"]["plastic"]["value"] == pytest.approx(0.8, abs=1e-4)
    assert r["precision"]["paper"]["value"] == pytest.approx(5 / 7, abs=1e-4)
    assert r["confusion"][CLASSES.index("plastic")][CLASSES.index("paper")] == 2
    assert r["classifier"] == "farz-material@sha256:bbbbbbbbbbbb"

    now = datetime.now(UTC)
    counted_events = [event("cam-1", now - timedelta(minutes=5), "plastic") for _ in range(40)]
    counted_events += [event("cam-1", now - timedelta(minutes=5), "paper") for _ in range(60)]
    assert single.ingest("cam-1", counted_events).status_code == 200  # type: ignore[attr-defined]
    start = (now - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0).isoformat()  # hour buckets start on the hour
    body = single.client.get("/api/v1/composition", params={"from": start, "adjusted": "true"}, headers=single.headers("viewer")).json()
    adjusted = body["adjusted"]
    confusion = np.zeros((6, 6), np.int64)
    for true, counted in truth_counted:
        confusion[CLASSES.index(true), CLASSES.index(counted)] += 1
    hand = trust.adjusted_composition({"plastic": 40, "paper": 60}, confusion, CLASSES)
    assert adjusted["items"] == 100 and adjusted["reviewed"] == 15
    for c in CLASSES:
        assert adjusted["estimated_shares"][c]["value"] == pytest.approx(hand.adjusted[c].value, abs=1e-4)
    # By hand: paper counted = 0.2·plastic + paper = 0.6, plastic counted = 0.8·plastic = 0.4 → plastic 0.5, paper 0.5.
    assert adjusted["estimated_shares"]["plastic"]["value"] == pytest.approx(0.5, abs=1e-4)
    assert adjusted["estimated_shares"]["paper"]["value"] == pytest.approx(0.5, abs=1e-4)
    assert adjusted["reliable"] is False and "items" in adjusted["reason"]
    plain = single.client.get("/api/v1/composition", params={"from": start}, headers=single.headers("viewer")).json()
    assert "adjusted" not in plain or plain["adjusted"] is None
