"""Purity targets and alerts on a real SQLite file and a real PostgreSQL: judged as counts arrive, from the
minute rollups; device offline and outbox alerts; who may set and read them."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta

from server_fixtures import World, event

T = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def at(minutes: float, cls: str, n: int = 1, line: str = "pet") -> list[dict[str, object]]:
    return [event("cam-1", T + timedelta(minutes=minutes, seconds=i), cls=cls, line=line) for i in range(n)]


def set_target(w: World, role: str = "admin", **body: object) -> object:
    target = {"site": w.site, "line": "pet", "class": "plastic", "kind": "min", "share": 0.9, "window_min": 15, "min_items": 10, **body}
    return w.client.post("/api/v1/targets", json=target, headers=w.headers(role))


def alerts(w: World, **params: str) -> list[dict[str, object]]:
    r = w.client.get("/api/v1/alerts", params={"site": w.site, **params}, headers=w.headers("viewer"))
    assert r.status_code == 200, r.text
    return r.json()["alerts"]  # type: ignore[no-any-return]


def test_a_breach_opens_one_alert_and_recovery_closes_it(world: World) -> None:
    assert set_target(world).status_code == 200  # type: ignore[attr-defined]
    world.ingest("cam-1", at(0, "plastic", 9))
    assert alerts(world) == []  # 9 items: not judged yet
    world.ingest("cam-1", at(1, "plastic", 1))
    assert alerts(world) == []  # 10/10 plastic
    world.ingest("cam-1", at(2, "glass", 2))  # 10/12 = 0.833 < 0.9
    world.ingest("cam-1", at(3, "glass", 1))  # still breached: the same alert
    (alert,) = alerts(world)
    assert alert["open"] is True and alert["kind"] == "purity" and alert["line"] == "pet" and alert["items"] == 12
    assert alert["value"] == round(10 / 12, 4) and alert["summary"] == "plastic ≥ 90 % over 15 min"
    assert datetime.fromisoformat(str(alert["started"])) == T + timedelta(minutes=2, seconds=1)
    (state,) = world.client.get("/api/v1/targets", params={"site": world.site}, headers=world.headers("viewer")).json()["targets"]
    assert state["state"] == "breach" and state["alert_id"] == alert["id"]
    world.ingest("cam-1", at(4, "plastic", 27))  # 37/40 = 0.925
    (closed,) = alerts(world)
    assert closed["open"] is False and closed["value"] == 0.925 and closed["items"] == 40
    assert datetime.fromisoformat(str(closed["ended"])) == T + timedelta(minutes=4, seconds=26)
    assert alerts(world, open="true") == []


def test_the_window_rolls_and_other_lines_and_directions_do_not_count(world: World) -> None:
    assert set_target(world, **{"class": "trash", "kind": "max", "share": 0.1, "window_min": 10}).status_code == 200  # type: ignore[attr-defined]
    world.ingest("cam-1", at(0, "trash", 5) + at(0, "plastic", 5))  # 50 % trash: breach
    assert [a["open"] for a in alerts(world)] == [True]
    world.ingest("cam-1", at(1, "trash", 20, line="other") + [{**e, "direction": "out"} for e in at(1, "trash", 20)])
    (alert,) = alerts(world)
    assert alert["items"] == 10 and alert["open"] is True
    world.ingest("cam-1", at(11, "plastic", 10))  # the first minute left the window: 0 % trash
    (alert,) = alerts(world)
    assert alert["open"] is False and alert["value"] == 0.0 and alert["items"] == 10


def test_device_offline_and_outbox_alerts(world: World) -> None:
    world.client.app.state.settings.offline_after_s = 0.5  # type: ignore[attr-defined]
    world.ingest("cam-2", [], heartbeat={"fps": 10, "outbox_depth": 5000})
    # (a slow machine may already be past offline_after_s here: only the outbox alert is asked for)
    (outbox,) = [a for a in alerts(world) if a["device"] == "cam-2" and a["kind"] == "outbox"]
    assert outbox["value"] == 5000 and outbox["open"] is True
    time.sleep(0.7)
    kinds = {(a["kind"], a["open"]) for a in alerts(world) if a["device"] == "cam-2"}
    assert kinds == {("outbox", True), ("device_offline", True)}
    world.client.app.state.settings.offline_after_s = 120  # type: ignore[attr-defined]  # a slow machine must not go offline again
    world.ingest("cam-2", [], heartbeat={"fps": 10, "outbox_depth": 3})
    assert {(a["kind"], a["open"]) for a in alerts(world) if a["device"] == "cam-2"} == {("outbox", False), ("device_offline", False)}


def test_only_admins_set_targets_and_everyone_of_the_site_reads_them(world: World) -> None:
    for role in ("viewer", "reader", "cam-1"):
        assert set_target(world, role).status_code == 403, role  # type: ignore[attr-defined]
    assert world.client.post("/api/v1/targets", json={"site": world.site}).status_code == 401
    assert set_target(world, share=1.5).status_code == 422  # type: ignore[attr-defined]
    assert set_target(world, kind="about").status_code == 422  # type: ignore[attr-defined]
    target = set_target(world).json()  # type: ignore[attr-defined]
    assert target["state"] == "not_judged" and target["summary"] == "plastic ≥ 90 % over 15 min"
    again = set_target(world, share=0.8).json()  # type: ignore[attr-defined]
    assert again["id"] == target["id"] and again["share"] == 0.8  # replaced, not added
    for role in ("viewer", "reader", "admin"):
        r = world.client.get("/api/v1/targets", params={"site": world.site}, headers=world.headers(role))
        assert r.status_code == 200 and len(r.json()["targets"]) == 1
    for url in ("/api/v1/targets", "/api/v1/alerts"):
        assert world.client.get(url, params={"site": world.site}).status_code == 401
        assert world.client.get(url, params={"site": world.site}, headers=world.headers("reader-oujda")).status_code == 403
        assert world.client.get(url, params={"site": world.site}, headers=world.headers("cam-1")).status_code == 403
    delete = f"/api/v1/targets/{target['id']}"
    assert world.client.delete(delete, params={"site": world.site}, headers=world.headers("viewer")).status_code == 403
    assert world.client.delete(delete, params={"site": world.site}, headers=world.headers("admin")).status_code == 204
    assert world.client.delete(delete, params={"site": world.site}, headers=world.headers("admin")).status_code == 404


def test_deleting_a_breached_target_closes_its_alert_and_alerts_come_as_csv(world: World) -> None:
    target = set_target(world).json()  # type: ignore[attr-defined]
    world.ingest("cam-1", at(0, "glass", 10))
    assert alerts(world)[0]["open"] is True
    r = world.client.get("/api/v1/alerts", params={"site": world.site, "format": "csv"}, headers=world.headers("reader"))
    (row,) = list(csv.DictReader(io.StringIO(r.text)))
    assert row["kind"] == "purity" and row["value"] == "0.0" and row["items"] == "10" and row["open"] == "True"
    world.client.delete(f"/api/v1/targets/{target['id']}", params={"site": world.site}, headers=world.headers("admin"))
    assert alerts(world)[0]["open"] is False
