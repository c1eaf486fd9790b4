"""``/api/v1/composition``: shares per class over time, from the rollups, equal to ``/counts`` for the same period."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from server_fixtures import World, event

T0 = datetime(2026, 7, 14, 8, 0, tzinfo=UTC)  # 09:00 in Casablanca (UTC+1 in July 2026)
PERIOD = {"from": (T0 - timedelta(hours=2)).isoformat(), "to": (T0 + timedelta(hours=4)).isoformat()}


def composition(w: World, role: str = "viewer", **params: str) -> dict[str, object]:
    r = w.client.get("/api/v1/composition", params={"site": w.site, **PERIOD, **params}, headers=w.headers(role))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def load(w: World) -> None:
    """40 items over 2 h 20 min: every 3.5 min, plastic twice as often as glass on belt-1; paper on belt-2."""
    w.client.app.state.settings.max_past_days = 10_000  # type: ignore[attr-defined]
    events = [event("cam-1", T0 + timedelta(seconds=210 * i), cls=("plastic", "plastic", "glass")[i % 3]) for i in range(40)]
    events += [event("cam-2", T0 + timedelta(minutes=10 * i), cls="paper", line="belt-2") for i in range(6)]
    events += [event("cam-1", T0 + timedelta(minutes=1), cls="trash", direction="out")]
    assert w.ingest("cam-1", [e for e in events if e["device_id"] == "cam-1"]).status_code == 200  # type: ignore[attr-defined]
    assert w.ingest("cam-2", [e for e in events if e["device_id"] == "cam-2"]).status_code == 200  # type: ignore[attr-defined]


@pytest.mark.parametrize(("bucket", "counts_bucket"), [("15min", "minute"), ("hour", "hour"), ("day", "day")])
def test_each_bucket_holds_what_counts_gives_for_the_same_period(world: World, bucket: str, counts_bucket: str) -> None:
    load(world)
    body = composition(world, bucket=bucket)
    counts = world.client.get(
        "/api/v1/counts", params={"site": world.site, "bucket": counts_bucket, **PERIOD}, headers=world.headers("viewer")
    ).json()["series"]
    per_class: dict[str, int] = {}
    for p in counts:
        if p["direction"] == "in":
            per_class[p["class"]] = per_class.get(p["class"], 0) + p["count"]
    series = body["series"]
    assert isinstance(series, list)
    summed: dict[str, int] = {}
    for point in series:
        assert point["total"] == sum(point["counts"].values())
        assert abs(sum(point["shares"].values()) - 1) < 1e-3
        for c, n in point["counts"].items():
            summed[c] = summed.get(c, 0) + n
    assert summed == per_class == {"plastic": 27, "glass": 13, "paper": 6}
    assert body["classes"] == ["glass", "paper", "plastic"] and body["direction"] == "in"


def test_quarter_hours_start_on_the_local_quarter(world: World) -> None:
    load(world)
    series = composition(world, bucket="15min", line="belt-1")["series"]
    assert isinstance(series, list)
    starts = [p["start"] for p in series]
    assert starts[0] == "2026-07-14T09:00:00+01:00" and starts[1] == "2026-07-14T09:15:00+01:00"
    assert all(datetime.fromisoformat(s).minute % 15 == 0 for s in starts)
    first = series[0]  # items at 0, 210, 420, 630, 840 s: plastic, plastic, glass, plastic, plastic
    assert first["counts"] == {"glass": 1, "plastic": 4} and first["shares"] == {"glass": 0.2, "plastic": 0.8}


def test_filters_and_directions(world: World) -> None:
    load(world)
    assert composition(world, line="belt-2")["classes"] == ["paper"]
    assert composition(world, device="cam-1")["classes"] == ["glass", "plastic"]
    assert composition(world, direction="out")["classes"] == ["trash"]
    both = composition(world, direction="both", bucket="day")["series"]
    assert isinstance(both, list) and both[0]["total"] == 47


def test_csv_rows_per_bucket_and_class(world: World) -> None:
    load(world)
    r = world.client.get(
        "/api/v1/composition", params={"site": world.site, **PERIOD, "bucket": "day", "format": "csv"}, headers=world.headers("reader")
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    expected = [("glass", "13", "46"), ("paper", "6", "46"), ("plastic", "27", "46")]
    assert [(row["class"], row["count"], row["total"]) for row in rows] == expected
    assert abs(sum(float(row["share"]) for row in rows) - 1) < 1e-3


def test_who_may_read_it_and_bad_ranges(world: World) -> None:
    url = "/api/v1/composition"
    assert world.client.get(url, params={"site": world.site}).status_code == 401
    assert world.client.get(url, params={"site": world.site}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert world.client.get(url, params={"site": world.site}, headers=world.headers("cam-1")).status_code == 403
    assert world.client.get(url, params={"site": world.site}, headers=world.headers("reader-oujda")).status_code == 403
    assert world.client.get(url, params={"site": "nowhere"}, headers=world.headers("admin")).status_code == 404
    assert world.client.get(url, params={"site": world.site}, headers=world.headers("viewer")).json()["series"] == []
    backwards = {"site": world.site, "from": PERIOD["to"], "to": PERIOD["from"]}
    assert world.client.get(url, params=backwards, headers=world.headers("viewer")).status_code == 422
    too_long = {"site": world.site, "bucket": "15min", "from": (T0 - timedelta(days=40)).isoformat(), "to": T0.isoformat()}
    r = world.client.get(url, params=too_long, headers=world.headers("viewer"))
    assert r.status_code == 422 and "31 days" in r.text
    assert world.client.get(url, params={"site": world.site, "bucket": "week"}, headers=world.headers("viewer")).status_code == 422
