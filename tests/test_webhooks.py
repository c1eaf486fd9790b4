"""Alert webhooks against a real local HTTP receiver: alerts are POSTed as signed JSON, retried with backoff
while the receiver fails, given up after the last attempt, and ingest never waits for the receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from server_fixtures import BACKENDS, World, build_world, event, fresh_postgres_url, postgres_available

from server.webhooks import backoff_s

SECRET = "s3cret-for-tests"


class Receiver:
    """A local HTTP server that answers each POST with the next status of ``statuses`` (then 200), optionally
    holding requests until ``release`` is set."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.got: list[tuple[dict[str, str], bytes, int]] = []
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.release.wait(10)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[dict[str, object]]:
        return [json.loads(body) for _, body, status in self.got if status == 200]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


def wait_until(check: Callable[[], bool], within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(params=BACKENDS)
def fast_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world whose webhook sender polls every 50 ms and retries after 0.1 s, 0.2 s, … (3 attempts at most)."""
    if request.param == "postgresql" and not postgres_available():
        pytest.skip("no PostgreSQL (.ci/run starts one)")
    url = fresh_postgres_url() if request.param == "postgresql" else f"sqlite:///{tmp_path / 'farz.db'}"
    settings = {"webhook_poll_s": 0.05, "webhook_backoff_s": 0.1, "webhook_timeout_s": 2.0, "webhook_max_attempts": 3}
    w = build_world(url, settings)
    with w.client:
        yield w


def breach_and_recover(w: World) -> None:
    target = {"site": w.site, "line": "belt-1", "class": "plastic", "kind": "min", "share": 0.9, "window_min": 15, "min_items": 5}
    assert w.client.post("/api/v1/targets", json=target, headers=w.headers("admin")).status_code == 200
    t = datetime.now(UTC) - timedelta(minutes=30)
    assert w.ingest("cam-1", [event("cam-1", t + timedelta(seconds=i), cls="trash") for i in range(5)]).status_code == 200  # type: ignore[attr-defined]
    later = t + timedelta(minutes=20)  # the trash has left the 15-minute window
    assert w.ingest("cam-1", [event("cam-1", later + timedelta(seconds=i)) for i in range(5)]).status_code == 200  # type: ignore[attr-defined]


def test_alerts_reach_the_webhook_signed_after_retries_and_ingest_never_waits(fast_world: World) -> None:
    w, receiver = fast_world, Receiver([503, 503])
    try:
        hook = {"site": w.site, "url": receiver.url, "secret": SECRET}
        for role in ("viewer", "reader", "cam-1"):
            assert w.client.put("/api/v1/webhook", json=hook, headers=w.headers(role)).status_code == 403
        assert w.client.put("/api/v1/webhook", json=hook).status_code == 401
        assert w.client.put("/api/v1/webhook", json={**hook, "url": "ftp://x"}, headers=w.headers("admin")).status_code == 422
        put = w.client.put("/api/v1/webhook", json=hook, headers=w.headers("admin"))
        assert put.status_code == 200 and put.json()["signed"] is True and "secret" not in put.text
        receiver.release.clear()  # the receiver hangs: counts must still be taken
        breach_and_recover(w)
        alerts = w.client.get("/api/v1/alerts", params={"site": w.site}, headers=w.headers("viewer")).json()["alerts"]
        assert [(a["kind"], a["open"]) for a in alerts] == [("purity", False)]
        receiver.release.set()
        wait_until(lambda: len(receiver.delivered()) == 2)
        assert [status for _, _, status in receiver.got[:2]] == [503, 503]  # the first message is retried twice
        assert [m["type"] for m in receiver.delivered()] == ["alert.opened", "alert.closed"]
        opened, closed = receiver.delivered()
        assert opened["site"] == w.site and opened["alert"]["id"] == closed["alert"]["id"] == alerts[0]["id"]  # type: ignore[index]
        assert closed["alert"]["ended"] is not None and closed["alert"]["open"] is False  # type: ignore[index]
        for headers, body, _ in receiver.got:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["x-farz-signature"] == expected and headers["content-type"] == "application/json"
        state = w.client.get("/api/v1/webhook", params={"site": w.site}, headers=w.headers("admin")).json()
        assert [(d["type"], d["state"], d["attempts"]) for d in state["deliveries"]] == [
            ("alert.closed", "delivered", 1),
            ("alert.opened", "delivered", 3),
        ]
        assert w.client.get("/api/v1/webhook", params={"site": w.site}, headers=w.headers("viewer")).status_code == 403
        assert w.client.get("/api/v1/webhook", params={"site": w.site}).status_code == 401
        assert w.client.get("/api/v1/webhook", params={"site": w.site}, headers=w.headers("reader-oujda")).status_code == 403
    finally:
        receiver.close()


def test_a_receiver_that_keeps_failing_is_given_up_on_and_a_site_without_webhook_queues_nothing(fast_world: World) -> None:
    w, receiver = fast_world, Receiver([500] * 10)
    try:
        breach_and_recover(w)  # no webhook yet: nothing queued
        assert w.client.get("/api/v1/webhook", params={"site": w.site}, headers=w.headers("admin")).json()["deliveries"] == []
        assert w.client.put("/api/v1/webhook", json={"site": w.site, "url": receiver.url}, headers=w.headers("admin")).status_code == 200
        w.client.delete("/api/v1/targets/1", params={"site": w.site}, headers=w.headers("admin"))
        breach_and_recover(w)

        def states() -> list[tuple[str, int, str | None]]:
            body = w.client.get("/api/v1/webhook", params={"site": w.site}, headers=w.headers("admin")).json()
            return [(d["state"], d["attempts"], d["last_error"]) for d in body["deliveries"]]

        wait_until(lambda: [s for s, _, _ in states()] == ["failed", "failed"])
        assert states() == [("failed", 3, "HTTP 500"), ("failed", 3, "HTTP 500")]
        assert "x-farz-signature" not in receiver.got[0][0]  # no secret, no signature
        assert w.client.put("/api/v1/webhook", json={"site": w.site, "url": None}, headers=w.headers("admin")).json()["url"] is None
    finally:
        receiver.close()


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff_s(n, 2.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff_s(30, 2.0) == 3600.0


def test_the_admin_command_sets_and_removes_a_webhook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from farz.cli import main

    url = f"sqlite:///{tmp_path / 'farz.db'}"
    build_world(url)
    monkeypatch.setenv("HOOK_SECRET", "abc")
    base = ["server", "admin", "set-webhook", "--site", "berkane-c1", "--database-url", url]
    assert main([*base, "--url", "https://ops.example.org/hook", "--secret-env", "HOOK_SECRET"]) == 0
    assert main([*base, "--url", "not a url"]) != 0
    assert main([*base, "--url", "https://x.example", "--secret-env", "UNSET_VAR_FOR_TEST"]) != 0
    assert main([*base, "--remove"]) == 0
