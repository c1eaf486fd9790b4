"""The uploader: sends outbox batches to ``POST /api/v1/ingest``; deletes only what the server acknowledged.

Failures (connection refused, timeouts, 5xx, 429) are retried with exponential backoff and full
jitter. A batch the server refuses as invalid (another 4xx), and each event it refuses within an accepted
batch (a class outside its taxonomy, a time out of range), is moved aside to the outbox's ``rejected``
table with the server's reason — kept, logged, never retried in a loop and never lost.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from device.outbox import Outbox

log = logging.getLogger("farz.uploader")
RETRY_STATUSES = {401, 403, 408, 409, 425, 429}


class SampleQueue(Protocol):
    """Files waiting for upload when no counts wait: hard samples, review items."""

    endpoint: str  # the server path they are POSTed to

    def pending(self) -> list[Path]: ...
    def body(self, meta_path: Path, device_id: str) -> dict[str, object]: ...
    def remove(self, meta_path: Path) -> None: ...


@dataclass
class UploadStats:
    """What the uploader has done, for heartbeats and the live view."""

    uploaded: int = 0
    duplicates: int = 0
    failures: int = 0
    rejected: int = 0
    samples: int = 0
    last_upload: float | None = None  # unix seconds of the last acknowledged batch
    last_error: str = ""


class Uploader:
    """Moves events from the outbox to the server in a background thread.

    Args:
        outbox: where events wait.
        url: the server's base URL (``/api/v1/ingest`` is appended).
        device_id: this device's id, sent with every batch.
        token: the device token (sent as ``Authorization: Bearer``), or None.
        heartbeat: returns the heartbeat dict to attach when one is due.
        interval_s: pause between uploads when the outbox is drained.
        heartbeat_s: how often a heartbeat is sent.
        timeout_s: per-request timeout.
        batch_size: events per request.
        linger_s: how long to wait after new events before sending, so that a burst goes in one request.
    """

    def __init__(
        self,
        outbox: Outbox,
        url: str,
        device_id: str,
        token: str | None,
        heartbeat: Callable[[], dict[str, object]],
        interval_s: float = 2.0,
        heartbeat_s: float = 30.0,
        timeout_s: float = 10.0,
        batch_size: int = 500,
        max_backoff_s: float = 60.0,
        samples: SampleQueue | None = None,
        linger_s: float = 0.25,
        reviews: SampleQueue | None = None,
    ) -> None:
        self.outbox = outbox
        self.base_url = url.rstrip("/")
        self.endpoint = self.base_url + "/api/v1/ingest"
        self.queues = [q for q in (samples, reviews) if q is not None]
        self.device_id = device_id
        self.token = token
        self.heartbeat = heartbeat
        self.interval_s = interval_s
        self.heartbeat_s = heartbeat_s
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.max_backoff_s = max_backoff_s
        self.linger_s = linger_s
        self.stats = UploadStats()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_heartbeat = time.monotonic() + min(heartbeat_s, 5.0)  # the first once figures exist
        self._failures_in_row = 0
        self._refused = False  # the last failure was a refused connection: nothing listens at the server's address
        self._deadline: float | None = None  # while flushing at exit: no request may outlast it

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="uploader", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Upload soon (new events were committed)."""
        self._wake.set()

    def stop(self, flush_timeout_s: float = 0.0) -> None:
        """Stop the thread, then try for up to ``flush_timeout_s`` to send every pending count (and hard sample)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 1)
        if flush_timeout_s > 0:
            self.flush(flush_timeout_s)

    def _pending(self) -> bool:
        return bool(self.outbox.depth() or any(q.pending() for q in self.queues) or self._next_heartbeat == 0.0)

    def flush(self, timeout_s: float) -> bool:
        """Send what waits, and a last heartbeat that tells the server how the device stopped, for up to
        ``timeout_s``; failures are retried after at most 1.6 s. Gives up at once when nothing listens at the
        server's address (connection refused): the counts are safe in the outbox and go on the next start.
        Returns True when nothing is left."""
        self._deadline = time.monotonic() + timeout_s
        self._next_heartbeat = 0.0
        failures = 0
        try:
            while self._pending() and time.monotonic() < self._deadline:
                if self.send_once():
                    failures = 0
                    continue
                if self._refused:
                    left = self.outbox.depth()
                    log.warning("the server is gone (%s): %d events stay in the outbox for the next start", self.stats.last_error, left)
                    break
                failures += 1
                time.sleep(max(0.0, min(self._deadline - time.monotonic(), 0.1 * 2 ** min(failures, 4))))
        finally:
            self._deadline = None
        return not self._pending()

    def _post(self, body: dict[str, object], endpoint: str | None = None) -> dict[str, object]:
        data = json.dumps(body, separators=(",", ":")).encode()
        request = urllib.request.Request(endpoint or self.endpoint, data=data, method="POST", headers={"Content-Type": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        timeout = self.timeout_s if self._deadline is None else min(self.timeout_s, max(0.5, self._deadline - time.monotonic()))
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read() or b"{}")
        return answer if isinstance(answer, dict) else {}

    def send_once(self) -> bool:
        """Send one batch (and a heartbeat when due). Returns True when something was acknowledged
        or nothing was pending; False after a failure (the caller backs off)."""
        batch = self.outbox.pending(self.batch_size)
        now = time.monotonic()
        beat_due = now >= self._next_heartbeat
        if not batch and not beat_due:
            return self.send_sample()
        body: dict[str, object] = {"device_id": self.device_id, "events": [p.body for p in batch]}
        if beat_due:
            body["heartbeat"] = self.heartbeat()
        try:
            answer = self._post(body)
        except urllib.error.HTTPError as exc:
            reason = exc.read()[:500].decode(errors="replace")
            if exc.code < 500 and exc.code not in RETRY_STATUSES and batch:
                moved = self.outbox.reject([p.event_id for p in batch], f"HTTP {exc.code}: {reason}")
                self.stats.rejected += moved
                log.error(
                    "server refused a batch of %d events (HTTP %d: %s); kept aside in the outbox's rejected table", moved, exc.code, reason
                )
                return True
            return self._failed(f"HTTP {exc.code}: {reason[:200]}", exc)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, ValueError) as exc:
            return self._failed(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}", exc)
        if beat_due:
            self._next_heartbeat = now + self.heartbeat_s
        if batch:
            refused = self._refused_events(answer, {p.event_id for p in batch})
            for reason, ids in refused.items():
                self.stats.rejected += self.outbox.reject(ids, reason)
                log.error("server refused %d events (%s); kept aside in the outbox's rejected table", len(ids), reason)
            set_aside = {event_id for ids in refused.values() for event_id in ids}
            self.outbox.acknowledge(p.event_id for p in batch if p.event_id not in set_aside)
            self.stats.uploaded += int(answer.get("accepted", 0))  # type: ignore[call-overload]
            self.stats.duplicates += int(answer.get("duplicates", 0))  # type: ignore[call-overload]
            self.stats.last_upload = time.time()
        if self._failures_in_row:
            log.info("upload recovered after %d failed attempts", self._failures_in_row)
        self._failures_in_row = 0
        return True

    @staticmethod
    def _refused_events(answer: dict[str, object], sent: set[str]) -> dict[str, list[str]]:
        """The events of the batch the server refused one by one (``rejected``: [{event_id, reason}]), by reason."""
        by_reason: dict[str, list[str]] = {}
        rejected = answer.get("rejected")
        for item in rejected if isinstance(rejected, list) else []:
            if isinstance(item, dict) and item.get("event_id") in sent:
                by_reason.setdefault(str(item.get("reason", "refused"))[:500], []).append(str(item["event_id"]))
        return by_reason

    def send_sample(self) -> bool:
        """When no counts wait, send the oldest hard sample or review item (if any); False after a failure.
        One the server refuses (4xx) is dropped with a log line: sending it again would not change the answer."""
        waiting = next(((q, pending) for q in self.queues if (pending := q.pending())), None)
        if waiting is None:
            return True
        queue, (oldest, *_) = waiting
        try:
            self._post(queue.body(oldest, self.device_id), self.base_url + queue.endpoint)
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code not in RETRY_STATUSES:
                reason = exc.read()[:300].decode(errors="replace")
                log.error("server refused %s %s (HTTP %d: %s); dropping it", queue.endpoint, oldest.stem, exc.code, reason)
                queue.remove(oldest)
                return True
            return self._failed(f"{queue.endpoint}: HTTP {exc.code}", exc)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, ValueError) as exc:
            return self._failed(f"{queue.endpoint}: {type(exc).__name__}", exc)
        queue.remove(oldest)
        self.stats.samples += 1
        return True

    def _failed(self, error: str, exc: BaseException | None = None) -> bool:
        reason = getattr(exc, "reason", exc)
        self._refused = isinstance(exc, ConnectionRefusedError) or isinstance(reason, ConnectionRefusedError)
        self.stats.failures += 1
        self.stats.last_error = error
        self._failures_in_row += 1
        if self._failures_in_row in (1, 10) or self._failures_in_row % 100 == 0:
            log.warning("upload failed (%s); %d events wait in the outbox; retrying with backoff", error, self.outbox.depth())
        return False

    def backoff_s(self) -> float:
        """Full-jitter exponential backoff for the current run of failures."""
        return random.uniform(0, min(self.max_backoff_s, 0.5 * 2 ** min(self._failures_in_row, 10)))

    def _run(self) -> None:
        while not self._stop.is_set():
            ok = self.send_once()
            if not ok:
                self._wake.clear()
                self._stop.wait(self.backoff_s())
                continue
            if self.outbox.depth() >= self.batch_size:
                continue
            self._wake.wait(self.interval_s)
            self._stop.wait(self.linger_s)  # counts come in bursts: one request for the burst, not one per count
            self._wake.clear()
