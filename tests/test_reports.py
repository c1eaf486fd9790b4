"""Shifts and the shift report: totals per class, line and hour, purity, alerts, availability from heartbeat
gaps, models in use and labels, as JSON, CSV and PDF, with the same numbers as the rest of the API."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest
from browser import ARTIFACTS
from server_fixtures import World, event

from farz.cli import main as farz_main
from server.availability import down_gaps
from server.db import make_engine, session_factory
from server.ingest import ingest
from server.models import Device, Shift, Site
from server.schemas import IngestIn
from server.settings import Settings
from server.shifts import period_of
from server.zones import site_zone

TZ = site_zone("Africa/Casablanca")
DAY = (datetime.now(TZ) - timedelta(days=2)).date()
START = datetime.combine(DAY, datetime.min.time(), tzinfo=TZ).replace(hour=6).astimezone(UTC)  # the morning shift, 06:00-10:00
MODEL = "farz-waste@sha256:aaa+farz-material@sha256:bbb"


def minute(m: int, s: int = 0) -> datetime:
    return START + timedelta(minutes=m, seconds=s)


def plan() -> dict[int, list[tuple[str, str, str]]]:
    """cam-1's counts per shift minute: (line, class, direction). belt-1 is clean plastic except 20 minutes of
    trash from minute 60 (a breach of plastic ≥ 90 %), belt-2 carries paper, and a few items go back out."""
    out: dict[int, list[tuple[str, str, str]]] = {}
    for m in range(240):
        items = [("belt-1", "trash" if 60 <= m < 80 else "plastic", "in")]
        if m % 3 == 0:
            items.append(("belt-2", "paper", "in"))
        if m % 40 == 7:
            items.append(("belt-1", "plastic", "out"))
        out[m] = items
    return out


def run_shift(w: World) -> Counter[tuple[str, str, str]]:
    """Replay the shift through ``ingest`` with the clock at each minute: cam-1 sends counts and a heartbeat
    every minute but is silent from minute 100 to 110; cam-2 only sends heartbeats, and stops at minute 180."""
    settings = Settings(database_url=w.url)
    engine = make_engine(w.url)
    expected: Counter[tuple[str, str, str]] = Counter()
    with session_factory(engine)() as s:
        site = s.get(Site, w.site)
        cam1, cam2 = s.get(Device, "cam-1"), s.get(Device, "cam-2")
        assert site is not None and cam1 is not None and cam2 is not None
        for d in (cam1, cam2):
            d.created = START - timedelta(days=1)
        s.commit()
        for m, items in plan().items():
            if not 100 <= m < 110:
                events = [event("cam-1", minute(m, 5 + i), cls, direction, line) for i, (line, cls, direction) in enumerate(items)]
                expected.update(items)
                body = IngestIn.model_validate({"device_id": "cam-1", "events": events, "heartbeat": {"model": MODEL}})
                assert ingest(s, cam1, site, body, settings, now=minute(m, 20)).accepted == len(events)
            if m < 180:
                ingest(s, cam2, site, IngestIn.model_validate({"device_id": "cam-2", "events": [], "heartbeat": {"model": "old@sha256:1"}}),
                       settings, now=minute(m, 30))  # fmt: skip
        outside = [event("cam-1", START - timedelta(seconds=30)), event("cam-1", START + timedelta(hours=4))]  # 05:59:30, 10:00:00
        ingest(s, cam1, site, IngestIn.model_validate({"device_id": "cam-1", "events": outside}), settings, now=minute(241))
    engine.dispose()
    return expected


def read_pdf(data: bytes, png: Path) -> tuple[str, np.ndarray]:
    """The text of a PDF's pages (whitespace collapsed) and its first page rendered to ``png`` at 150 dpi."""
    assert data.startswith(b"%PDF")
    document = pdfium.PdfDocument(data)
    text = " ".join(" ".join(page.get_textpage().get_text_range().split()) for page in document)
    image = document[0].render(scale=150 / 72).to_numpy()[:, :, :3]
    cv2.imwrite(str(png), image)
    assert cv2.imread(str(png)).shape == image.shape
    return text, image


def report(w: World, role: str = "viewer", **params: str) -> object:
    query = {"site": w.site, "date": DAY.isoformat(), "shift": "morning", **params}
    return w.client.get("/api/v1/reports/shift", params=query, headers=w.headers(role))


def test_the_shift_report_has_every_figure_and_matches_the_api(world: World) -> None:
    w = world
    r = w.client.post(
        "/api/v1/shifts", json={"site": w.site, "name": "morning", "start": "06:00", "end": "10:00"}, headers=w.headers("admin")
    )
    assert r.status_code == 200, r.text
    target = {"site": w.site, "line": "belt-1", "class": "plastic", "kind": "min", "share": 0.9, "window_min": 15, "min_items": 10}
    assert w.client.post("/api/v1/targets", json=target, headers=w.headers("admin")).status_code == 200
    label = {"site": w.site, "line": "belt-1", "start": minute(60).isoformat(), "end": minute(80).isoformat(), "text": "supplier B load"}
    assert w.client.post("/api/v1/labels", json=label, headers=w.headers("viewer")).status_code == 201
    expected = run_shift(w)
    got = report(w)
    assert got.status_code == 200, got.text  # type: ignore[attr-defined]
    body = got.json()  # type: ignore[attr-defined]
    assert body["shift"] == {
        "name": "morning", "date": DAY.isoformat(), "start": minute(0).astimezone(TZ).isoformat(),
        "end": minute(240).astimezone(TZ).isoformat(), "hours": 4.0, "in_progress": False,
    }  # fmt: skip
    ins = Counter({c: n for (_, c, d), n in expected.items() if d == "in"})
    for (line, cls, direction), n in expected.items():
        ins_line = next(b for b in body["lines"] if b["line"] == line)
        assert ins_line["counts"][direction][cls] == n
    assert body["totals"]["counts"]["in"] == dict(sorted(ins.items()))  # 05:59:30 and 10:00 are outside
    assert body["totals"]["total_in"] == sum(ins.values()) and body["totals"]["total_out"] == 6
    assert sum(h["total"] for h in body["hours"]) == sum(ins.values()) and len(body["hours"]) == 4
    # purity over the whole shift: 200 plastic of 220 on belt-1 minus the 10 silent minutes
    purity = body["purity"][0]
    assert purity["items"] == 230 and purity["measured"] == round(210 / 230, 4) and purity["met"] is True
    assert purity["alerts"] == 1 and 28 <= purity["breach_minutes"] <= 35  # trash from 60 to 80, then 15 min to wash out
    (alert,) = [a for a in body["alerts"] if a["kind"] == "purity"]
    assert alert["ended"] is not None and alert["line"] == "belt-1"
    devices = {d["device"]: d for d in body["devices"]}
    assert devices["cam-1"]["down_s"] == 600 and devices["cam-1"]["availability"] == round(1 - 600 / 14400, 4)
    assert devices["cam-1"]["down"] == [{"start": minute(100).astimezone(TZ).isoformat(), "end": minute(110).astimezone(TZ).isoformat()}]
    assert devices["cam-2"]["availability"] == 0.75 and devices["cam-2"]["models"] == ["old@sha256:1"]
    assert body["models"] == sorted([MODEL, "old@sha256:1"])
    assert [(x["text"], x["total"], x["counts"]) for x in body["labels"]] == [("supplier B load", 20, {"trash": 20})]
    # the same period read from the other endpoints gives the same numbers
    period = {"site": w.site, "from": minute(0).isoformat(), "to": minute(240).isoformat()}
    for bucket in ("minute", "hour"):
        series = w.client.get("/api/v1/counts", params={**period, "bucket": bucket, "limit": 100000}, headers=w.headers("reader")).json()
        api_in = Counter()
        for p in series["series"]:
            if p["direction"] == "in":
                api_in[p["class"]] += p["count"]
        assert api_in == ins, bucket
    hourly = w.client.get("/api/v1/composition", params={**period, "bucket": "hour"}, headers=w.headers("reader")).json()
    assert [(p["start"], p["counts"]) for p in hourly["series"]] == [(h["start"], h["counts"]) for h in body["hours"]]
    labels = w.client.get("/api/v1/labels", params={"site": w.site}, headers=w.headers("reader")).json()["labels"]
    assert labels == body["labels"]
    alerts = w.client.get("/api/v1/alerts", params=period, headers=w.headers("reader")).json()["alerts"]

    def instants(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:  # the report writes times in the site's zone
        at = lambda value: value and datetime.fromisoformat(str(value))  # noqa: E731
        return [(a["id"], a["value"], a["items"], at(a["started"]), at(a["ended"])) for a in rows]

    assert instants(alerts) == instants(body["alerts"])
    assert body["alerts"][0]["started"].endswith(minute(0).astimezone(TZ).isoformat()[-6:])  # the site's offset
    assert {a["kind"] for a in alerts} == {"purity", "device_offline"}  # cam-2 went silent at 09:00
    # CSV: the same figures, a row each
    rows = list(csv.DictReader(io.StringIO(report(w, format="csv").text)))  # type: ignore[attr-defined]
    assert {(r["class"], int(r["count"])) for r in rows if r["section"] == "total" and r["direction"] == "in"} == set(ins.items())
    assert [r["value"] for r in rows if r["section"] == "device"] == [str(devices["cam-1"]["availability"]), "0.75"]
    assert {r["section"] for r in rows} == {"total", "line", "hour", "purity", "alert", "device", "label"}
    # PDF, from the API and from `farz server report`: rendered to PNG, its text holds the same figures
    pdf = report(w, format="pdf")
    assert pdf.headers["content-type"] == "application/pdf"  # type: ignore[attr-defined]
    out = ARTIFACTS / f"shift-report-{w.url.split(':')[0]}.pdf"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert farz_main(["server", "report", "--site", w.site, "--date", DAY.isoformat(), "--shift", "morning", "--out", str(out),
                      "--database-url", w.url]) == 0  # fmt: skip
    for data in (pdf.content, out.read_bytes()):  # type: ignore[attr-defined]
        text, png = read_pdf(data, out.with_suffix(".png"))
        assert "Shift report · Berkane C1" in text and f"Shift morning of {DAY.isoformat()}" in text
        for cls, n in ins.items():
            assert f"{cls} {n} " in text, (cls, n)
        assert f"all {sum(ins.values())} 6 100.0 %" in text
        assert f"cam-1 {devices['cam-1']['availability'] * 100:.1f} % 10.0" in text and "cam-2 75.0 % 60.0" in text
        assert "plastic ≥ 90 % over 15 min 91.3 % 230 met 1" in text
        assert "supplier B load (belt-1)" in text and MODEL in text
        assert (abs(png.astype(int) - (184, 111, 29)).sum(axis=2) < 30).sum() > 500  # the chart's plastic bars (#1d6fb8, BGR)


def test_shift_roles_and_bad_requests(world: World) -> None:
    w = world
    body = {"site": w.site, "name": "night", "start": "22:00", "end": "06:00"}
    assert w.client.post("/api/v1/shifts", json=body).status_code == 401
    for role in ("viewer", "reader", "cam-1"):
        assert w.client.post("/api/v1/shifts", json=body, headers=w.headers(role)).status_code == 403, role
    assert w.client.post("/api/v1/shifts", json={**body, "start": "25:00"}, headers=w.headers("admin")).status_code == 422
    created = w.client.post("/api/v1/shifts", json=body, headers=w.headers("admin")).json()
    listed = w.client.get("/api/v1/shifts", params={"site": w.site}, headers=w.headers("viewer")).json()
    assert listed["shifts"] == [created] and listed["tz"] == "Africa/Casablanca"
    assert w.client.get("/api/v1/shifts", params={"site": w.site}, headers=w.headers("reader-oujda")).status_code == 403
    assert report(w, shift="night").status_code == 200  # type: ignore[attr-defined]
    assert report(w, "reader", shift="night").status_code == 200  # type: ignore[attr-defined]
    assert report(w, "cam-1", shift="night").status_code == 403  # type: ignore[attr-defined]
    assert report(w, "reader-oujda", shift="night").status_code == 403  # type: ignore[attr-defined]
    assert w.client.get("/api/v1/reports/shift", params={"site": w.site, "date": "2026-01-01", "shift": "night"}).status_code == 401
    missing = report(w, shift="evening")
    assert missing.status_code == 404 and "its shifts: night" in missing.text  # type: ignore[attr-defined]
    assert report(w, shift="night", date="yesterday").status_code == 422  # type: ignore[attr-defined]
    delete = f"/api/v1/shifts/{created['id']}"
    assert w.client.delete(delete, params={"site": w.site}, headers=w.headers("viewer")).status_code == 403
    assert w.client.delete(delete, params={"site": w.site}, headers=w.headers("admin")).status_code == 204
    assert w.client.delete(delete, params={"site": w.site}, headers=w.headers("admin")).status_code == 404


def test_a_night_shift_crosses_midnight_and_daylight_saving() -> None:
    paris = site_zone("Europe/Paris")
    night = Shift(name="night", start="22:00", end="06:00")
    p = period_of(night, date(2026, 3, 28), paris)  # clocks go forward at 02:00 on the 29th
    assert (
        p.start == datetime(2026, 3, 28, 21, 0, tzinfo=UTC) and p.end == datetime(2026, 3, 29, 4, 0, tzinfo=UTC) and p.seconds == 7 * 3600
    )
    day = period_of(Shift(name="all day", start="00:00", end="00:00"), date(2026, 10, 25), paris)  # clocks go back: 25 h
    assert day.seconds == 25 * 3600


def test_down_gaps_count_silences_at_least_as_long_as_the_offline_limit() -> None:
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    at = [t0 + timedelta(minutes=m) for m in (-1, 0, 1, 3, 4, 10, 11)]  # a one-minute gap at 2, a five-minute gap at 5-9
    gaps = down_gaps(at, t0, t0 + timedelta(minutes=15), offline_after_s=120)
    assert gaps == [(t0 + timedelta(minutes=5), t0 + timedelta(minutes=10)), (t0 + timedelta(minutes=12), t0 + timedelta(minutes=15))]
    assert down_gaps([], t0, t0 + timedelta(minutes=15), 120) == [(t0, t0 + timedelta(minutes=15))]
    assert down_gaps(at[1:3], t0 + timedelta(minutes=1), t0 + timedelta(minutes=2), 120) == []
    assert down_gaps([t0 + timedelta(minutes=2)], t0, t0 + timedelta(minutes=3), 120) == [(t0, t0 + timedelta(minutes=2))]


@pytest.mark.parametrize("start", ["24:00", "6:00", "06:0", "", "ab:cd"])
def test_bad_shift_times_are_refused_with_the_field_named(start: str) -> None:
    from server.auth import AdminError
    from server.shifts import _clock

    with pytest.raises(AdminError, match="start"):
        _clock(start, "start")


def test_the_demo_site_has_shifts_for_its_shift_report(tmp_path: Path) -> None:
    from farz.demo import SITE, setup
    from server.shifts import shifts_of

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    setup(url, [Path("belt-a.mp4")])
    engine = make_engine(url)
    with session_factory(engine)() as s:
        assert [(x.name, x.start, x.end) for x in shifts_of(s, SITE)] == [
            ("morning", "06:00", "14:00"),
            ("afternoon", "14:00", "22:00"),
            ("night", "22:00", "06:00"),
        ]
    engine.dispose()
