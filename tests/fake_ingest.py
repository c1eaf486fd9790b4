"""A small fake of the server's ingest API on loopback, with switchable faults, for device tests.

Idempotent on (device_id, event_id) like the real server. ``fault`` decides how each request is
answered: ``None`` normally, ``"error"`` HTTP 500, ``"reset"`` closes the connection without an
answer, ``"slow"`` answers after ``slow_s``, ``"unavailable"`` HTTP 503. A fault may apply *after*
storing the events (``fault_after_store``), like a server that dies between commit and reply.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeIngest:
    def __init__(self, port: int = 0, token: str | None = None) -> None:
        self.events: dict[tuple[str, str], dict[str, object]] = {}
        self.heartbeats: list[dict[str, object]] = []
        self.requests = 0
        self.duplicates = 0
        self.token = token
        self.fault: Callable[[int], str | None] = lambda n: None
        self.fault_after_store = False
        self.slow_s = 1.5
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeIngest:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {"in": {}, "out": {}}
        for e in self.events.values():
            d, c = str(e["direction"]), str(e["class"])
            out[d][c] = out[d].get(c, 0) + 1
        return out

    def _store(self, body: dict[str, object]) -> tuple[int, int]:
        accepted = dup = 0
        with self._lock:
            for e in body.get("events", []):  # type: ignore[attr-defined]
                key = (str(body["device_id"]), str(e["event_id"]))
                if key in self.events:
                    dup += 1
                else:
                    self.events[key] = e
                    accepted += 1
            if body.get("heartbeat"):
                self.heartbeats.append(body["heartbeat"])  # type: ignore[arg-type]
            self.duplicates += dup
        return accepted, dup

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, code: int, payload: dict[str, object]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                with fake._lock:
                    fake.requests += 1
                    n = fake.requests
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._answer(401, {"detail": "bad token"})
                    return
                fault = fake.fault(n)
                stored = (0, 0)
                if fault in (None, "slow") or fake.fault_after_store:
                    stored = fake._store(body)
                if fault == "error":
                    self._answer(500, {"detail": "boom"})
                elif fault == "unavailable":
                    self._answer(503, {"detail": "down for maintenance"})
                elif fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                elif fault == "slow":
                    time.sleep(fake.slow_s)
                    self._answer(200, {"accepted": stored[0], "duplicates": stored[1]})
                else:
                    self._answer(200, {"accepted": stored[0], "duplicates": stored[1]})

        return Handler
