"""``farz bench server``: fill a database through the real HTTP ingest path, then time aggregate queries.

A ``farz server run`` process serves on loopback; client threads post batches of 500 events over
keep-alive connections (each device's events spread over the past four weeks in time order, as devices
report them, across lines and classes);
then random aggregate queries (every bucket, with and without filters) are timed end to end. Last, the
cost of purity targets: the same ingest into sites without targets and sites with two targets on every
line, alternately (ABBA, so drift cancels), in batches of 20 as a device that keeps up posts them,
printed as a ratio of events/s measured in the same run. The same comparison is made once more in this
process, calling the ingest function directly (no HTTP, no server process: the noise of both goes), batch by
batch in ABBA order, over the last hour's counts, so that targets are judged on full windows.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.auth import create_device, create_site, create_token
from server.db import make_engine, session_factory
from server.migrate import migrate

CLASSES = ("cardboard", "glass", "metal", "paper", "plastic", "trash")
LINES = ("belt-1", "belt-2")
BATCH = 500
DEVICE_BATCH = 20  # what a device posts at a time while it keeps up (the targets comparison)
SPAN = timedelta(days=28)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _batch(device: str, n: int, rng: random.Random, start: datetime, step: timedelta) -> bytes:
    """``n`` events as one ingest body, stamped from ``start`` on, ``step`` apart on average (a device
    reports in time order); ids are time-ordered like the UUIDv7 ids devices make."""
    events = []
    ms = int(time.time() * 1000)
    for i in range(n):
        ts = start + step * (i + rng.random())
        ms += 1
        event_id = uuid.UUID(int=(ms << 80) | (0x7 << 76) | rng.getrandbits(76))
        events.append(
            f'{{"event_id":"{event_id}","ts":"{ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}","device_id":"{device}",'
            f'"line":"{rng.choice(LINES)}","class":"{rng.choice(CLASSES)}","direction":"{"in" if rng.random() < 0.97 else "out"}",'
            f'"track_id":{rng.randrange(1_000_000)},"confidence":0.9,"model":"bench@sha256:0"}}'
        )
    return f'{{"device_id":"{device}","events":[{",".join(events)}]}}'.encode()


def _post_all(port: int, device: str, token: str, total: int, seed: int, errors: list[str], batch: int = BATCH) -> None:
    rng = random.Random(seed)
    step = SPAN / max(total, 1)  # this device's events cover the past four weeks, in order
    start = datetime.now(UTC) - SPAN
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    sent = 0
    while sent < total:
        n = min(batch, total - sent)
        conn.request("POST", "/api/v1/ingest", body=_batch(device, n, rng, start + step * sent, step), headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200 or json.loads(body)["accepted"] != n:
            errors.append(f"{response.status}: {body[:200]!r}")
            return
        sent += n
    conn.close()


def _query_times(port: int, token: str, site: str, devices: list[str], n: int) -> list[float]:
    rng = random.Random(1)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    now = datetime.now(UTC)
    spans = {"minute": timedelta(hours=2), "hour": timedelta(days=2), "day": SPAN, "week": SPAN}  # what dashboards and reports ask
    times = []
    for i in range(n):
        bucket = ("minute", "hour", "day", "week")[i % 4]
        params = {"site": site, "bucket": bucket, "from": (now - spans[bucket]).isoformat(), "to": now.isoformat(), "limit": "100000"}
        choice = rng.randrange(4)
        if choice == 1:
            params["device"] = rng.choice(devices)
        elif choice == 2:
            params["class"] = rng.choice(CLASSES)
        elif choice == 3:
            params["line"] = rng.choice(LINES)
        start = time.perf_counter()
        conn.request("GET", "/api/v1/counts?" + urllib.parse.urlencode(params), headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        times.append((time.perf_counter() - start) * 1000)
        if response.status != 200:
            raise RuntimeError(f"query failed with HTTP {response.status}")
    conn.close()
    return times


def _stored_total(port: int, token: str, site: str) -> int:
    """Every event the server holds for ``site`` (all time), read back through the API."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    query = urllib.parse.urlencode(
        {"site": site, "bucket": "week", "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "limit": "100000"}
    )
    conn.request("GET", "/api/v1/counts?" + query, headers={"Authorization": f"Bearer {token}"})
    series = json.loads(conn.getresponse().read())["series"]
    conn.close()
    return sum(int(p["count"]) for p in series)


def _ingest(port: int, names: list[str], tokens: list[str], events: int, seed: int, batch: int = BATCH) -> float:
    """Post ``events`` spread over the devices ``names``, one thread each, ``batch`` per request; returns the seconds."""
    errors: list[str] = []
    devices = len(names)
    per = [events // devices + (1 if i < events % devices else 0) for i in range(devices)]
    threads = [
        threading.Thread(target=_post_all, args=(port, d, t, n, seed + i, errors, batch))
        for i, (d, t, n) in enumerate(zip(names, tokens, per, strict=True))
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"ingest failed: {errors[0]}")
    return seconds


def _site(session: object, site: str, devices: int, with_targets: bool) -> tuple[list[str], list[str]]:
    """A site with ``devices`` devices (and, ``with_targets``, two purity targets on each line)."""
    from server.targets import set_target

    create_site(session, site, "Benchmark site", "Africa/Casablanca")  # type: ignore[arg-type]
    session.flush()  # type: ignore[attr-defined]
    names = [f"{site}-cam{i}" for i in range(devices)]
    tokens = [create_device(session, d, site) for d in names]  # type: ignore[arg-type]
    if with_targets:
        for line in LINES:
            set_target(session, site, line, "plastic", "min", 0.5, 15, 20)  # type: ignore[arg-type]
            set_target(session, site, line, "trash", "max", 0.05, 15, 20)  # type: ignore[arg-type]
    return names, tokens


def _in_process_targets(url: str, batches: int, seed: int = 7) -> dict[str, float]:
    """ms per batch of ``DEVICE_BATCH`` events ingested by ``server.ingest.ingest`` into a site without and a site
    with targets, alternating in ABBA order; events cover the last hour in time order."""
    from server.ingest import ingest
    from server.models import Device, Site
    from server.schemas import IngestIn
    from server.settings import Settings

    engine = make_engine(url)
    factory = session_factory(engine)
    tag = uuid.uuid4().hex[:6]
    sites = {f"inproc-{tag}-p": False, f"inproc-{tag}-t": True}  # site → with targets
    with factory() as s:
        (plain,), (judged,) = (_site(s, site, 1, targets)[0] for site, targets in sites.items())
        s.commit()
    site_of = dict(zip((plain, judged), sites, strict=True))
    settings = Settings(database_url=url)
    rng = random.Random(seed)
    step = timedelta(hours=1) / (batches * DEVICE_BATCH)
    start = datetime.now(UTC) - timedelta(hours=1)
    spent = {plain: 0.0, judged: 0.0}
    try:
        for i in range(batches):
            order = (plain, judged) if i % 4 in (0, 3) else (judged, plain)
            for device in order:
                body = IngestIn.model_validate_json(_batch(device, DEVICE_BATCH, rng, start + step * DEVICE_BATCH * i, step))
                with factory() as s:
                    row, site = s.get(Device, device), s.get(Site, site_of[device])
                    assert row is not None and site is not None
                    began = time.perf_counter()
                    ingest(s, row, site, body, settings)
                    spent[device] += time.perf_counter() - began
    finally:
        engine.dispose()
    return {"plain_ms": spent[plain] / batches * 1000, "judged_ms": spent[judged] / batches * 1000}


def bench_server(
    database_url: str | None, events: int, devices: int = 8, queries: int = 200, workers: int = 1, target_events: int = 20_000
) -> dict[str, object]:
    """Ingest ``events`` over HTTP, then time ``queries`` aggregate reads; then ingest ``target_events`` into a
    site without targets and one with purity targets on every line, alternately (ABBA), for the cost of
    judging targets as counts arrive; returns the figures."""
    tmp = tempfile.mkdtemp(prefix="farz-bench-")
    url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
    migrate(url)
    engine = make_engine(url)
    site = f"bench-{uuid.uuid4().hex[:6]}"
    with session_factory(engine)() as s:
        names, tokens = _site(s, site, devices, False)
        plain = [_site(s, f"{site}-p{k}", devices, False) for k in range(2)]
        judged = [_site(s, f"{site}-t{k}", devices, True) for k in range(2)]
        reader = create_token(s, "reader", site_id=site)
        s.commit()
    engine.dispose()
    port = _free_port()
    env = {**os.environ, "FARZ_DATABASE_URL": url}
    server = subprocess.Popen(
        [sys.executable, "-m", "farz", "server", "run", "--port", str(port), "--workers", str(workers), "--database-url", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        seconds = _ingest(port, names, tokens, events, 0)
        stored = _stored_total(port, reader, site)
        times = _query_times(port, reader, site, names, queries)
        half = max(target_events // 2, devices)
        plain_s = judged_s = 0.0
        for k, (first, second) in enumerate(((plain[0], judged[0]), (judged[1], plain[1]))):
            a = _ingest(port, *first, half, 100 + k, DEVICE_BATCH)
            b = _ingest(port, *second, half, 200 + k, DEVICE_BATCH)
            plain_s += a if first in plain else b
            judged_s += b if first in plain else a
    finally:
        server.terminate()
        server.wait(timeout=30)
    in_process = _in_process_targets(url, max(target_events // (2 * DEVICE_BATCH), 4))
    backend = url.split(":", 1)[0]
    return {
        "backend": backend,
        "events": events,
        "devices": devices,
        "ingest_seconds": round(seconds, 2),
        "ingest_events_per_s": round(events / seconds, 1),
        "queries": len(times),
        "query_p50_ms": round(statistics.median(times), 2),
        "query_p95_ms": round(statistics.quantiles(times, n=20)[18], 2) if len(times) >= 20 else round(max(times), 2),
        "workers": workers,
        "errors": 0,
        "lost": events - stored,
        "targets_events": 2 * half,
        "targets_ingest_events_per_s": round(2 * half / judged_s, 1),
        "no_targets_ingest_events_per_s": round(2 * half / plain_s, 1),
        "targets_over_no_targets": round(plain_s / judged_s, 3),
        "in_process_ms_per_batch_targets": round(in_process["judged_ms"], 3),
        "in_process_ms_per_batch_no_targets": round(in_process["plain_ms"], 3),
        "in_process_targets_over_no_targets": round(in_process["plain_ms"] / in_process["judged_ms"], 3),
    }
