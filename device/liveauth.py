"""Who may open the device's live view: a device-local token, or a person's token checked with the server.

Roles: ``viewer`` (page, stream, status) and ``installer`` (also the setup editor). The device-local token
(``farz device init`` prints it; the agent makes one in its data folder when none is configured) is an
installer's. A server token is asked about at ``GET /api/v1/whoami`` and the answer is cached: used as is
for ``fresh_s``, and while the server cannot be reached for up to ``stale_s`` — so the view still opens
offline for tokens the device has already seen. Failed attempts are counted per client address and
refused for a while once there are too many. Tokens are never logged; the cache keys are their SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger("farz.liveauth")

Role = Literal["viewer", "installer"]
ROLE_RANK = {"viewer": 0, "installer": 1}
SERVER_ROLES: dict[str, Role] = {"viewer": "viewer", "reader": "viewer", "installer": "installer", "admin": "installer"}
Fetch = Callable[[str], tuple[int, dict[str, object]]]  # token -> (HTTP status, JSON body); raises OSError when unreachable


class Refused(Exception):
    """A request the live view turns away: ``status`` 401 (no or unknown token) or 403 (not allowed)."""

    def __init__(self, status: int, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Access:
    """Who got in: their role and how the token was checked (``local``, ``server``, ``cache``, ``offline-cache``)."""

    role: Role
    checked: str

    def allows(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


@dataclass
class _Answer:
    role: Role | None  # None: refused by the server
    reason: str
    at: float


def new_local_token() -> str:
    return "farzlv_" + secrets.token_urlsafe(32)


def ensure_local_token(path: Path) -> str:
    """The token in ``path``; a new one written there (mode 0600) when the file does not exist."""
    if path.is_file():
        token = path.read_text().strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_local_token()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(token + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return token


def server_fetch(server_url: str, timeout_s: float) -> Fetch:
    """Ask ``server_url``/api/v1/whoami about a token."""

    def fetch(token: str) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(server_url + "/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise OSError(f"server answered {exc.code}") from None
            return exc.code, {}

    return fetch


class TokenChecker:
    """Checks live-view tokens; ``check`` returns the ``Access`` or raises ``Refused``. Thread-safe."""

    def __init__(
        self,
        local_token: str,
        site: str,
        fetch: Fetch | None = None,
        fresh_s: float = 60.0,
        stale_s: float = 12 * 3600.0,
        refused_s: float = 30.0,
        max_failures: int = 10,
        failure_window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        cache_size: int = 256,
    ) -> None:
        self._local = hashlib.sha256(local_token.encode()).digest()
        self.site = site
        self.fetch = fetch
        self.fresh_s, self.stale_s, self.refused_s = fresh_s, stale_s, refused_s
        self.max_failures, self.failure_window_s = max_failures, failure_window_s
        self.clock = clock
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, _Answer] = OrderedDict()
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, token: str | None, client: str, needs: Role = "viewer") -> Access:
        """The access ``token`` gives a request from address ``client``; raises ``Refused`` (401/403)."""
        now = self.clock()
        self._refuse_if_locked_out(client, now)
        if not token:
            raise Refused(401, "this live view needs a token: open it as /?token=<token>, or send `Authorization: Bearer <token>`")
        digest = hashlib.sha256(token.encode()).digest()
        if hmac.compare_digest(digest, self._local):
            access = Access("installer", "local")
        else:
            access = self._server_access(token, digest, now, client)
        if not access.allows(needs):
            raise Refused(403, f"this needs an {needs} token (yours is a {access.role}'s): ask an admin for one")
        return access

    def _refuse_if_locked_out(self, client: str, now: float) -> None:
        with self._lock:
            recent = self._failures.get(client)
            while recent and now - recent[0] > self.failure_window_s:
                recent.popleft()
            if recent is not None and len(recent) >= self.max_failures:
                wait = self.failure_window_s - (now - recent[0])
                raise Refused(403, f"too many failed token attempts from {client}: try again in {wait:.0f} s", wait)

    def _fail(self, client: str, now: float, status: int, message: str) -> Refused:
        with self._lock:
            self._failures.setdefault(client, deque()).append(now)
            if len(self._failures) > 4 * self.cache_size:
                self._failures.pop(next(iter(self._failures)))
        log.warning("live view: refused a token from %s (%s)", client, message)
        return Refused(status, message)

    def _server_access(self, token: str, digest: bytes, now: float, client: str) -> Access:
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached.at <= (self.fresh_s if cached.role else self.refused_s):
            return self._from_answer(cached, "cache", client, now)
        if self.fetch is None:
            raise self._fail(client, now, 401, "unknown token (this device has no server to check it with; use its local token)")
        try:
            status, body = self.fetch(token)
        except OSError as exc:
            if cached is not None and cached.role is not None and now - cached.at <= self.stale_s:
                return Access(cached.role, "offline-cache")
            log.warning("live view: cannot check a token with the server (%s)", exc)
            raise Refused(
                401,
                "cannot check this token: the server is unreachable and this device has not seen it; use the device's local token",
            ) from None
        answer = self._answer(status, body)
        with self._lock:
            self._cache[digest] = answer
            self._cache.move_to_end(digest)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return self._from_answer(answer, "server", client, now)

    def _answer(self, status: int, body: dict[str, object]) -> _Answer:
        now = self.clock()
        if status != 200:
            return _Answer(None, "unknown token", now)
        role, site = str(body.get("role", "")), body.get("site")
        mapped = SERVER_ROLES.get(role)
        if mapped is None:
            return _Answer(None, f"a {role or 'unknown'} token may not open the live view", now)
        if site is not None and site != self.site:
            return _Answer(None, f"this token is for site {site!r}, and this device is on site {self.site!r}", now)
        return _Answer(mapped, "", now)

    def _from_answer(self, answer: _Answer, checked: str, client: str, now: float) -> Access:
        if answer.role is None:
            raise self._fail(client, now, 401 if answer.reason == "unknown token" else 403, answer.reason)
        return Access(answer.role, checked)
