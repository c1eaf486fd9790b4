"""Alert webhooks: per site, a URL that gets each alert's opening and closing as POSTed JSON.

Messages are written to ``webhook_deliveries`` in the transaction that opens or closes the alert (ingest never
waits on the network, and a message is lost neither by a crash nor by a receiver that is down). A ``Sender``
thread in each server process POSTs due messages, claiming each one first so that several workers never send
it twice at once, and retries failures with exponential backoff (``webhook_backoff_s`` doubling, at most an hour
apart) up to ``webhook_max_attempts``. A site's messages go out in order: one waits while an older one is
pending. With a secret, ``X-Farz-Signature: sha256=<hex HMAC of the body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from server.auth import AdminError
from server.models import Site, Webhook, WebhookDelivery

log = logging.getLogger("farz.webhooks")
MAX_BACKOFF_S = 3600.0
PENDING = (WebhookDelivery.delivered.is_(None), WebhookDelivery.failed.is_(False))  # neither delivered nor given up
Poster = Callable[[str, bytes, dict[str, str], float], int]  # url, body, headers, timeout → HTTP status


def set_webhook(session: Session, site_id: str, url: str | None, secret: str | None = None) -> Webhook | None:
    """Point a site's alerts at ``url`` (http or https), or remove its webhook with ``url=None``."""
    if session.get(Site, site_id) is None:
        raise AdminError(f"unknown site {site_id!r}: create it first with `farz server admin create-site`")
    row = session.get(Webhook, site_id)
    if url is None:
        if row is not None:
            session.delete(row)
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AdminError(f"webhook URL {url!r} is not an http:// or https:// address")
    if row is None:
        row = Webhook(site_id=site_id, created=datetime.now(UTC))
        session.add(row)
    row.url, row.secret = url, secret or None
    session.flush()
    return row


def enqueue(session: Session, site_id: str, payload: dict[str, object], now: datetime | None = None) -> bool:
    """Queue ``payload`` for the site's webhook in the caller's transaction; False when the site has none."""
    if session.get(Webhook, site_id) is None:
        return False
    now = now or datetime.now(UTC)
    session.add(WebhookDelivery(site_id=site_id, payload=json.dumps(payload), attempts=0, next_attempt=now, failed=False, created=now))
    return True


def post_json(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST ``body``; the HTTP status (an HTTP error status is returned, a network error raised as OSError)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # admins set http(s) URLs only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def backoff_s(attempts: int, base_s: float) -> float:
    """Seconds before retry number ``attempts`` (1, 2, …): base, 2·base, 4·base, … at most an hour."""
    return float(min(MAX_BACKOFF_S, base_s * 2 ** (attempts - 1)))


class Sender:
    """Sends due webhook messages from a background thread (``start``/``stop``), or one pass with ``run_once``."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        poll_s: float = 1.0,
        timeout_s: float = 5.0,
        backoff_base_s: float = 2.0,
        max_attempts: int = 20,
        post: Poster = post_json,
    ) -> None:
        self.sessions = sessions
        self.poll_s, self.timeout_s, self.backoff_base_s, self.max_attempts = poll_s, timeout_s, backoff_base_s, max_attempts
        self.post = post
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="farz-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 2)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database hiccup must not end the thread; it is retried
                log.exception("webhook sender: pass failed, retrying in %.1f s", self.poll_s)
            self._stop.wait(self.poll_s)

    def run_once(self, now: datetime | None = None) -> int:
        """Send what is due; returns how many messages were delivered."""
        delivered = 0
        with self.sessions() as session:
            now = now or datetime.now(UTC)
            due = session.execute(
                select(WebhookDelivery.id, WebhookDelivery.site_id, WebhookDelivery.next_attempt)
                .where(*PENDING, WebhookDelivery.next_attempt <= now)
                .order_by(WebhookDelivery.next_attempt, WebhookDelivery.id)
                .limit(50)
            ).all()
            for delivery_id, site_id, planned in due:
                if self._stop.is_set():
                    break
                if self._waits_behind(session, site_id, delivery_id):
                    continue
                lease = now + timedelta(seconds=self.timeout_s * 2 + 1)
                claimed = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id, WebhookDelivery.next_attempt == planned, WebhookDelivery.delivered.is_(None))
                    .values(next_attempt=lease)
                )
                session.commit()
                if getattr(claimed, "rowcount", 0) != 1:  # another worker has it
                    continue
                delivered += self._send(session, delivery_id)
                now = datetime.now(UTC)
        return delivered

    @staticmethod
    def _waits_behind(session: Session, site_id: str, delivery_id: int) -> bool:
        """Whether an older message of the site is still pending: a site's messages arrive in order."""
        older = session.execute(
            select(WebhookDelivery.id).where(WebhookDelivery.site_id == site_id, WebhookDelivery.id < delivery_id, *PENDING).limit(1)
        ).first()
        return older is not None

    def _send(self, session: Session, delivery_id: int) -> int:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:
            return 0
        hook = session.get(Webhook, row.site_id)
        if hook is None:  # the webhook was removed: nothing to send to
            row.failed, row.last_error = True, "the site no longer has a webhook"
            session.commit()
            return 0
        body = row.payload.encode()
        headers = {"Content-Type": "application/json", "User-Agent": "farz-server", "X-Farz-Delivery": str(row.id)}
        if hook.secret:
            headers["X-Farz-Signature"] = "sha256=" + hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
        try:
            status = self.post(hook.url, body, headers, self.timeout_s)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        row.attempts += 1
        now = datetime.now(UTC)
        if error is None:
            row.delivered, row.last_error = now, None
        else:
            row.last_error = error
            if row.attempts >= self.max_attempts:
                row.failed = True
                log.warning("webhook %s: gave up on message %d after %d attempts (%s)", hook.url, row.id, row.attempts, error)
            else:
                row.next_attempt = now + timedelta(seconds=backoff_s(row.attempts, self.backoff_base_s))
        session.commit()
        return 1 if error is None else 0


def deliveries(session: Session, site_id: str, limit: int = 100) -> list[dict[str, object]]:
    """The site's last webhook messages and how they went, newest first."""
    rows = session.execute(
        select(WebhookDelivery).where(WebhookDelivery.site_id == site_id).order_by(WebhookDelivery.id.desc()).limit(limit)
    ).scalars()
    return [
        {
            "id": r.id,
            "type": json.loads(r.payload).get("type"),
            "attempts": r.attempts,
            "state": "delivered" if r.delivered else "failed" if r.failed else "pending",
            "last_error": r.last_error,
        }
        for r in rows
    ]
