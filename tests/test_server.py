"""The server on a real SQLite file and a real PostgreSQL: ingest, idempotency, roles, time zones, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from server_fixtures import World, event

REPO = Path(__file__).resolve().parent.parent

T0 = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)  # 23:30 in Casablanca (UTC+0 since 2026-09-20, IANA 2026f): near a day edge


def counts_of(w: World, **params: str) -> list[dict[str, object]]:
    r = w.client.get("/api/v1/counts", params={"site": w.site, **params}, headers=w.headers("reader"))
    assert r.status_code == 200, r.text
    return r.json()["series"]  # type: ignore[no-any-return]


def test_ingest_is_idempotent_on_device_and_event_id(world: World) -> None:
    events = [event("cam-1") for _ in range(5)]
    first = world.ingest("cam-1", events)
    assert first.json() == {"accepted": 5, "duplicates": 0, "rejected": []}  # type: ignore[attr-defined]
    again = world.ingest("cam-1", [*events[2:], event("cam-1")])
    assert again.json() == {"accepted": 1, "duplicates": 3, "rejected": []}  # type: ignore[attr-defined]
    total = sum(p["count"] for p in counts_of(world, bucket="day"))  # type: ignore[misc]
    assert total == 6


def test_the_same_event_id_from_two_devices_is_two_events(world: World) -> None:
    e1, e2 = event("cam-1"), event("cam-2")
    e2["event_id"] = e1["event_id"]
    assert world.ingest("cam-1", [e1]).json()["accepted"] == 1  # type: ignore[attr-defined]
    assert world.ingest("cam-2", [e2]).json()["accepted"] == 1  # type: ignore[attr-defined]


def test_a_device_token_cannot_write_for_another_device_or_read(world: World) -> None:
    assert world.ingest("cam-2", [event("cam-2")], role="cam-1").status_code == 403  # type: ignore[attr-defined]
    assert world.client.get("/api/v1/counts", params={"site": world.site}, headers=world.headers("cam-1")).status_code == 403
    assert (
        world.client.get("/ngsi-ld/v1/entities", params={"type": "SortedWasteObserved"}, headers=world.headers("cam-1")).status_code == 403
    )


def test_readers_and_viewers_cannot_write(world: World) -> None:
    for role in ("reader", "viewer", "admin"):
        assert world.ingest("cam-1", [event("cam-1")], role=role).status_code == 403  # type: ignore[attr-defined]


def test_a_site_bound_token_reads_only_its_site(world: World) -> None:
    r = world.client.get("/api/v1/counts", params={"site": world.site}, headers=world.headers("reader-oujda"))
    assert r.status_code == 403
    assert [s["id"] for s in world.client.get("/api/v1/sites", headers=world.headers("reader-oujda")).json()] == ["oujda-c2"]


def test_missing_or_unknown_token_is_401(world: World) -> None:
    assert world.client.get("/api/v1/sites").status_code == 401
    assert world.client.get("/api/v1/sites", headers={"Authorization": "Bearer farz_nope"}).status_code == 401


def test_events_far_in_the_future_or_past_are_rejected_with_a_reason(world: World) -> None:
    now = datetime.now(UTC)
    future, past, ok = event("cam-1", now + timedelta(hours=2)), event("cam-1", now - timedelta(days=90)), event("cam-1", now)
    out = world.ingest("cam-1", [future, past, ok]).json()  # type: ignore[attr-defined]
    assert out["accepted"] == 1
    reasons = {r["event_id"]: r["reason"] for r in out["rejected"]}
    assert "future" in reasons[future["event_id"]] and "past" in reasons[past["event_id"]]


def test_a_count_of_a_class_outside_the_taxonomy_is_refused_with_a_reason_and_never_served(world: World) -> None:
    uranium, ok = event("cam-1", cls="uranium"), event("cam-1", cls="glass")
    out = world.ingest("cam-1", [uranium, ok]).json()  # type: ignore[attr-defined]
    assert out["accepted"] == 1
    assert [r["event_id"] for r in out["rejected"]] == [uranium["event_id"]]
    assert "'uranium' is not a class of the taxonomy" in out["rejected"][0]["reason"]
    assert {p["class"] for p in counts_of(world, bucket="day")} == {"glass"}


def test_the_taxonomy_the_server_accepts_is_the_one_the_models_are_trained_on() -> None:
    import yaml

    from server.settings import Settings

    taxonomy = yaml.safe_load((REPO / "datasets" / "taxonomy.yaml").read_text())
    assert Settings().classes == tuple(c["name"] for c in taxonomy["classes"])


def test_the_accepted_classes_can_be_set_and_are_checked() -> None:
    from server.settings import Settings, SettingsError

    assert Settings.load(environ={"FARZ_CLASSES": "glass, metal"}).classes == ("glass", "metal")
    with pytest.raises(SettingsError, match="classes"):
        Settings.load(environ={"FARZ_CLASSES": "Glass"})
    with pytest.raises(SettingsError, match="named twice"):
        Settings.load(environ={"FARZ_CLASSES": "glass,glass"})


def test_day_buckets_follow_the_site_time_zone(world: World) -> None:
    world.client.app.state.settings.max_past_days = 10_000  # type: ignore[attr-defined]
    # 23:30 UTC on the 24th is 23:30 local (the 24th); 00:30 UTC is 00:30 local on the 25th. Older rules (UTC+1 outside
    # Ramadan, e.g. Debian's tzdata 2025b) would put all three on the 25th: the server uses the tzdata package's rules.
    world.ingest("cam-1", [event("cam-1", T0), event("cam-1", T0 + timedelta(hours=1)), event("cam-1", T0 + timedelta(hours=1, minutes=5))])
    series = counts_of(world, bucket="day", **{"from": "2026-11-24T00:00:00+00:00", "to": "2026-11-26T00:00:00+00:00"})
    assert [(p["start"], p["count"]) for p in series] == [("2026-11-24T00:00:00+00:00", 1), ("2026-11-25T00:00:00+00:00", 2)]
    hours = counts_of(world, bucket="hour", **{"from": "2026-11-24T23:00:00+00:00", "to": "2026-11-25T02:00:00+00:00"})
    assert [(p["start"], p["count"]) for p in hours] == [("2026-11-24T23:00:00+00:00", 1), ("2026-11-25T00:00:00+00:00", 2)]
    minutes = counts_of(world, bucket="minute", **{"from": "2026-11-25T00:00:00+00:00", "to": "2026-11-25T01:00:00+00:00"})
    assert [p["start"] for p in minutes] == ["2026-11-25T00:30:00+00:00", "2026-11-25T00:35:00+00:00"]
    weeks = counts_of(world, bucket="week", **{"from": "2026-11-20T00:00:00+00:00", "to": "2026-12-01T00:00:00+00:00"})
    assert [(p["start"], p["count"]) for p in weeks] == [("2026-11-23T00:00:00+00:00", 3)]  # Monday the 23rd
    summer = datetime(2026, 7, 14, 22, 30, tzinfo=UTC)  # 23:30 local in July 2026, still UTC+1
    world.ingest("cam-1", [event("cam-1", summer)])
    july = counts_of(world, bucket="day", **{"from": "2026-07-14T00:00:00+01:00", "to": "2026-07-16T00:00:00+01:00"})
    assert [(p["start"], p["count"]) for p in july] == [("2026-07-14T00:00:00+01:00", 1)]


def test_sites_carry_the_utc_offsets_the_server_keeps_their_days_by(world: World) -> None:
    site = next(s for s in world.client.get("/api/v1/sites", headers=world.headers("admin")).json() if s["id"] == world.site)
    assert site["tz"] == "Africa/Casablanca" and site["tz_rules"] >= "2026f"
    offsets = [(datetime.fromisoformat(at), minutes) for at, minutes in site["utc_offsets"]]
    assert offsets[0][0] == datetime(2000, 1, 1, tzinfo=UTC)
    assert offsets[-1] == (datetime(2026, 9, 20, 1, 0, tzinfo=UTC), 0)  # Morocco back to UTC+0 for good


def test_bucket_edges_are_half_open(world: World) -> None:
    world.client.app.state.settings.max_past_days = 10_000  # type: ignore[attr-defined]
    world.ingest("cam-1", [event("cam-1", T0), event("cam-1", T0 + timedelta(hours=1))])
    series = counts_of(world, bucket="hour", **{"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()})
    assert sum(p["count"] for p in series) == 1  # type: ignore[misc]


def test_filters_by_device_line_and_class(world: World) -> None:
    world.ingest("cam-1", [event("cam-1", cls="glass"), event("cam-1", cls="metal", line="belt-2")])
    world.ingest("cam-2", [event("cam-2", cls="glass")])
    assert sum(p["count"] for p in counts_of(world, bucket="day", **{"class": "glass"})) == 2  # type: ignore[misc]
    assert sum(p["count"] for p in counts_of(world, bucket="day", device="cam-2")) == 1  # type: ignore[misc]
    assert sum(p["count"] for p in counts_of(world, bucket="day", line="belt-2")) == 1  # type: ignore[misc]


def test_counts_as_csv_by_format_or_accept_header(world: World) -> None:
    world.ingest("cam-1", [event("cam-1", cls="glass")])
    for kwargs in (
        {"params": {"site": world.site, "bucket": "day", "format": "csv"}},
        {"params": {"site": world.site, "bucket": "day"}, "headers_extra": {"Accept": "text/csv"}},
    ):
        headers = {**world.headers("reader"), **kwargs.get("headers_extra", {})}  # type: ignore[dict-item]
        r = world.client.get("/api/v1/counts", params=kwargs["params"], headers=headers)
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert (
            rows[0]["class"] == "glass"
            and rows[0]["count"] == "1"
            and set(rows[0]) == {"start", "device", "line", "class", "direction", "count"}
        )


def test_pagination_of_a_long_series(world: World) -> None:
    world.client.app.state.settings.max_past_days = 10_000  # type: ignore[attr-defined]
    world.ingest("cam-1", [event("cam-1", T0 + timedelta(minutes=i)) for i in range(30)])
    params = {"site": world.site, "bucket": "minute", "from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat(), "limit": "20"}
    first = world.client.get("/api/v1/counts", params=params, headers=world.headers("reader")).json()
    assert len(first["series"]) == 20 and first["next_offset"] == 20
    second = world.client.get("/api/v1/counts", params={**params, "offset": "20"}, headers=world.headers("reader")).json()
    assert len(second["series"]) == 10 and second["next_offset"] is None


def test_summary_has_today_week_shares_and_device_health(world: World) -> None:
    world.ingest(
        "cam-1",
        [event("cam-1", cls="glass"), event("cam-1", cls="glass"), event("cam-1", cls="paper")],
        heartbeat={"fps": 12.5, "outbox_depth": 0},
    )
    s = world.client.get(f"/api/v1/sites/{world.site}/summary", headers=world.headers("viewer")).json()
    assert s["today"]["counts"]["in"] == {"glass": 2, "paper": 1} and s["today"]["shares"] == {"glass": 0.6667, "paper": 0.3333}
    devices = {d["id"]: d for d in s["devices"]}
    assert devices["cam-1"]["online"] and devices["cam-1"]["heartbeat"]["fps"] == 12.5 and not devices["cam-2"]["online"]


def test_bad_requests_are_4xx_with_the_field_named(world: World) -> None:
    bad = event("cam-1")
    bad["direction"] = "sideways"
    r = world.ingest("cam-1", [bad])
    assert r.status_code == 422 and "direction" in str(r.json()["detail"][0]["loc"])  # type: ignore[attr-defined]
    r = world.client.post("/api/v1/ingest", content=b"{not json", headers={**world.headers("cam-1"), "Content-Type": "application/json"})
    assert r.status_code == 422
    r = world.client.get("/api/v1/counts", params={"site": world.site, "bucket": "fortnight"}, headers=world.headers("reader"))
    assert r.status_code == 422
    r = world.client.get("/api/v1/counts", params={"site": "nowhere"}, headers=world.headers("reader"))
    assert r.status_code == 404


def test_oversized_bodies_are_refused(world: World) -> None:
    huge = b'{"device_id": "cam-1", "events": [' + b" " * (5 * 2**20) + b"]}"
    r = world.client.post("/api/v1/ingest", content=huge, headers={**world.headers("cam-1"), "Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("bucket", ["minute", "hour", "day", "week"])
def test_every_bucket_sums_to_the_same_total(world: World, bucket: str) -> None:
    world.client.app.state.settings.max_past_days = 10_000  # type: ignore[attr-defined]
    world.ingest("cam-1", [event("cam-1", T0 + timedelta(minutes=7 * i), cls=("glass", "paper")[i % 2]) for i in range(40)])
    series = counts_of(world, bucket=bucket, **{"from": (T0 - timedelta(days=1)).isoformat(), "to": (T0 + timedelta(days=1)).isoformat()})
    assert sum(p["count"] for p in series) == 40  # type: ignore[misc]


def test_a_model_upload_is_refused_when_its_card_is_bad_or_its_bytes_do_not_match(world: World, tmp_path: object) -> None:
    import base64
    import hashlib
    import json as jsonlib

    from server.auth import create_token
    from server.db import make_engine, session_factory

    world.client.app.state.settings.model_dir = str(tmp_path)  # type: ignore[attr-defined]
    engine = make_engine(world.url)
    with session_factory(engine)() as s:
        scientist = create_token(s, "scientist")
        s.commit()
    engine.dispose()
    body = b"not really onnx, but bytes"
    card = {"name": "m", "sha256": hashlib.sha256(b"other bytes").hexdigest(), "classes": ["glass"], "imgsz": [320, 320]}

    def post(header: str, role_token: str = scientist) -> int:
        headers = {"Authorization": f"Bearer {role_token}", "Content-Type": "application/octet-stream", "X-Farz-Model-Card": header}
        return world.client.post("/api/v1/models", content=body, headers=headers).status_code

    assert post(base64.b64encode(jsonlib.dumps(card).encode()).decode()) == 422  # sha256 does not match the bytes
    assert post("%%% not base64") == 422
    assert post(base64.b64encode(b'{"name": "m"}').decode()) == 422  # card misses fields
    good = {**card, "sha256": hashlib.sha256(body).hexdigest()}
    assert post(base64.b64encode(jsonlib.dumps(good).encode()).decode(), world.tokens["reader"]) == 403
    assert post(base64.b64encode(jsonlib.dumps(good).encode()).decode()) == 201


def test_whoami_names_the_role_and_site_a_device_checks_live_view_tokens_against(world: World) -> None:
    assert world.client.get("/api/v1/whoami").status_code == 401
    assert world.client.get("/api/v1/whoami", headers={"Authorization": "Bearer farz_nope"}).status_code == 401
    assert world.client.get("/api/v1/whoami", headers=world.headers("viewer")).json() == {
        "role": "viewer",
        "site": "berkane-c1",
        "device_id": None,
    }
    assert world.client.get("/api/v1/whoami", headers=world.headers("admin")).json()["site"] is None
    assert world.client.get("/api/v1/whoami", headers=world.headers("cam-1")).json()["device_id"] == "cam-1"
