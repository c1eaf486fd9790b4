"""Time labels: staff name a period; each label comes back with what was counted in it, beside the others."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from server_fixtures import World, event

from server.zones import site_zone

T = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)


def label(w: World, role: str = "viewer", **body: object) -> object:
    payload = {"site": w.site, "start": T.isoformat(), "end": (T + timedelta(minutes=40)).isoformat(), "text": "supplier A", **body}
    return w.client.post("/api/v1/labels", json=payload, headers=w.headers(role))


def test_labelled_periods_compare_side_by_side(world: World) -> None:
    a = [event("cam-1", T + timedelta(minutes=m), cls="plastic") for m in range(0, 40, 2)]  # 20 plastic in A
    a += [event("cam-1", T + timedelta(minutes=5), cls="trash")]
    b = [event("cam-1", T + timedelta(minutes=60 + m), cls=("paper", "trash")[m % 2]) for m in range(10)]  # 5 + 5 in B
    outside = [event("cam-1", T + timedelta(minutes=45), cls="glass"), event("cam-1", T + timedelta(minutes=65), cls="glass", line="other")]
    assert world.ingest("cam-1", a + b + outside).status_code == 200  # type: ignore[attr-defined]
    first = label(world)
    assert first.status_code == 201, first.text  # type: ignore[attr-defined]
    assert first.json()["counts"] == {"plastic": 20, "trash": 1} and first.json()["created_by"] == "viewer"  # type: ignore[attr-defined]
    b_period = {"start": (T + timedelta(minutes=60)).isoformat(), "end": (T + timedelta(minutes=70)).isoformat()}
    second = label(world, "admin", line="belt-1", text="B", **b_period)
    assert second.status_code == 201  # type: ignore[attr-defined]
    body = world.client.get("/api/v1/labels", params={"site": world.site}, headers=world.headers("reader")).json()
    assert [(x["text"], x["total"], x["shares"]) for x in body["labels"]] == [
        ("supplier A", 21, {"plastic": round(20 / 21, 4), "trash": round(1 / 21, 4)}),
        ("B", 10, {"paper": 0.5, "trash": 0.5}),
    ]
    assert body["labels"][0]["start"].endswith(T.astimezone(site_zone("Africa/Casablanca")).isoformat()[-6:])  # the site's zone
    later = world.client.get(
        "/api/v1/labels", params={"site": world.site, "from": (T + timedelta(minutes=50)).isoformat()}, headers=world.headers("viewer")
    ).json()
    assert [x["text"] for x in later["labels"]] == ["B"]
    span = {"site": world.site, "from": T.isoformat(), "to": (T + timedelta(hours=2)).isoformat(), "bucket": "hour"}
    for line, wanted in ((None, ["supplier A", "B"]), ("belt-1", ["supplier A", "B"]), ("other", ["supplier A"])):
        params = {**span, "line": line} if line else span
        comp = world.client.get("/api/v1/composition", params=params, headers=world.headers("reader")).json()
        assert [x["text"] for x in comp["labels"]] == wanted, line
        assert comp["labels"][0] == body["labels"][0]  # the same figures as /labels
    r = world.client.get("/api/v1/labels", params={"site": world.site, "format": "csv"}, headers=world.headers("viewer"))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["label"], row["class"], row["count"]) for row in rows] == [
        ("supplier A", "plastic", "20"),
        ("supplier A", "trash", "1"),
        ("B", "paper", "5"),
        ("B", "trash", "5"),
    ]


def test_who_may_label_and_bad_labels(world: World) -> None:
    assert label(world, "reader").status_code == 403  # type: ignore[attr-defined]
    assert label(world, "cam-1").status_code == 403  # type: ignore[attr-defined]
    assert label(world, "reader-oujda").status_code == 403  # type: ignore[attr-defined]
    assert world.client.post("/api/v1/labels", json={"site": world.site}).status_code == 401
    backwards = label(world, end=(T - timedelta(minutes=1)).isoformat())
    assert backwards.status_code == 422 and "end must be after start" in backwards.text  # type: ignore[attr-defined]
    assert label(world, end=(T + timedelta(days=40)).isoformat()).status_code == 422  # type: ignore[attr-defined]
    assert label(world, text="").status_code == 422  # type: ignore[attr-defined]
    assert label(world, start="2026-11-24T10:00:00").status_code == 422  # type: ignore[attr-defined]  # no offset
    assert world.client.get("/api/v1/labels", params={"site": world.site}).status_code == 401
    assert world.client.get("/api/v1/labels", params={"site": world.site}, headers=world.headers("reader-oujda")).status_code == 403
