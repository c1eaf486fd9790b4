"""The staff live view on the device: the page, an annotated MJPEG stream, ``/api/status``, the installer's
setup page (count lines, zones, privacy masks; dry run; save), and an open ``/healthz``.

Every request but ``/healthz``, ``/login`` and the page's static files needs a token, whatever address the
view is bound to (``device.liveauth``): ``Authorization: Bearer``, the ``farz_live`` cookie that ``/login``
or ``/?token=…`` sets, or ``?token=`` on the stream and API. Refusals are 401/403 with a body that says why.

The counting loop only hands over references (latest frame, its detections, totals). Masking, annotation
and JPEG encoding happen in the viewer's own HTTP thread, at most ``max_fps`` times a second, and only
while somebody watches — so nobody watching costs counting nothing. Privacy masks are blacked out before
the frame is annotated or encoded: no unmasked picture leaves the device through the view.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import cv2

from device.config import LiveViewConfig
from device.liveauth import Access, Refused, Role, TokenChecker
from device.setup import SetupError
from device.sources import Frame
from vision import Annotator, Detections, PrivacyMask

log = logging.getLogger("farz.liveview")
COOKIE = "farz_live"
MAX_BODY = 64 * 1024
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"]+", re.IGNORECASE)


def _static(name: str) -> bytes:
    return resources.files("device").joinpath("static", name).read_bytes()


class Setup(Protocol):
    """What the setup page asks of the agent (``device.agent.Agent`` implements it)."""

    def setup_state(self) -> dict[str, object]: ...

    def start_dry_run(self, edit: object) -> dict[str, object]: ...

    def dry_run_state(self) -> dict[str, object]: ...

    def stop_dry_run(self) -> None: ...

    def save_setup(self, edit: object) -> dict[str, object]: ...


class LiveState:
    """The latest frame, its tracked detections and the totals, shared with the live view."""

    def __init__(self, annotator: Annotator, mask: PrivacyMask | None = None) -> None:
        self.annotator = annotator
        self.mask = mask or PrivacyMask()
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._detections = Detections.empty()
        self._totals: dict[tuple[str, str], int] = {}
        self._seq = 0
        self.viewers = 0

    def publish(self, frame: Frame, detections: Detections, totals: dict[tuple[str, str], int]) -> None:
        """Called by the counting loop each frame: stores references only."""
        with self._lock:
            self._frame, self._detections, self._totals = frame, detections, totals
            self._seq += 1

    def reconfigure(self, annotator: Annotator, mask: PrivacyMask) -> None:
        """New lines, zones and masks (a setup saved from the browser)."""
        with self._lock:
            self.annotator, self.mask = annotator, mask

    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) in px of the latest frame, None before the first."""
        with self._lock:
            frame = self._frame
        return None if frame is None else (int(frame.shape[1]), int(frame.shape[0]))

    def snapshot_jpeg(self, since: int = -1, quality: int = 75, plain: bool = False) -> tuple[int, bytes | None]:
        """(sequence number, JPEG of the latest frame: masked, and annotated unless ``plain``), encoded on the
        caller's thread; no JPEG when there is no frame yet or none newer than ``since``."""
        with self._lock:
            frame, dets, totals, seq = self._frame, self._detections, dict(self._totals), self._seq
            annotator, mask = self.annotator, self.mask
        if frame is None or seq == since:
            return seq, None
        safe = mask.apply(frame)
        picture = safe if plain else annotator.draw(safe, dets, totals)
        ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return seq, buf.tobytes() if ok else None


class LiveView:
    """HTTP server for the live view, running in a background thread."""

    def __init__(
        self,
        state: LiveState,
        status: Callable[[], dict[str, object]],
        tokens: TokenChecker,
        setup: Setup | None = None,
        settings: LiveViewConfig | None = None,
    ) -> None:
        self.state = state
        self.status = status
        self.tokens = tokens
        self.setup = setup
        self.settings = settings or LiveViewConfig()
        self.max_fps = self.settings.max_fps
        self.server = ThreadingHTTPServer((self.settings.host, self.settings.port), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="liveview", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        view = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "farz-liveview"
            sys_version = ""

            def log_message(self, format: str, *args: object) -> None:
                log.debug("%s %s", self.address_string(), TOKEN_IN_TEXT.sub(r"\1***", format % args))

            def _send(self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Referrer-Policy", "no-referrer")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, code: int, data: object, headers: dict[str, str] | None = None) -> None:
                self._send(code, json.dumps(data).encode(), "application/json", headers)

            def _login_page(self, code: int, reason: str, next_path: str = "/", headers: dict[str, str] | None = None) -> None:
                page = _static("login.html").decode()
                page = page.replace("{reason}", html.escape(reason)).replace("{next}", html.escape(next_path, quote=True))
                self._send(code, page.encode(), "text/html; charset=utf-8", headers)

            def _refuse(self, refused: Refused, page: bool) -> None:
                headers = {"Retry-After": str(max(1, round(refused.retry_after_s)))} if refused.retry_after_s else {}
                if refused.status == 401:
                    headers["WWW-Authenticate"] = 'Bearer realm="farz live view"'
                if page and refused.retry_after_s is None:
                    self._login_page(refused.status, refused.message, urlsplit(self.path).path, headers)
                else:
                    self._json(refused.status, {"detail": refused.message}, headers)

            def _token(self) -> str | None:
                header = self.headers.get("Authorization", "")
                if header.lower().startswith("bearer "):
                    return header[7:].strip() or None
                cookie = SimpleCookie(self.headers.get("Cookie", ""))
                if COOKIE in cookie and cookie[COOKIE].value:
                    return cookie[COOKIE].value
                values = parse_qs(urlsplit(self.path).query).get("token")
                return values[0] if values else None

            def _access(self, needs: Role, page: bool = False) -> Access | None:
                try:
                    return view.tokens.check(self._token(), self.client_address[0], needs)
                except Refused as refused:
                    self._refuse(refused, page)
                    return None

            def _cookie(self, token: str, max_age: int = 12 * 3600) -> str:
                return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}"

            def _body(self) -> tuple[bool, object]:
                """(True, the JSON body), or (False, None) after answering 400/413/415 when it is not one."""
                if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                    self._json(415, {"detail": "send the edit as JSON (Content-Type: application/json)"})
                    return False, None
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._json(413, {"detail": f"the body is over {MAX_BODY} bytes"})
                    return False, None
                try:
                    return True, json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    self._json(400, {"detail": "the body is not valid JSON"})
                    return False, None

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                path = url.path
                if path == "/healthz":
                    self._send(200, b'{"ok":true}', "application/json")
                    return
                if path.startswith("/static/"):
                    name = path.removeprefix("/static/")
                    suffix = name[name.rfind(".") :] if "." in name else ""
                    if "/" in name or suffix not in STATIC_TYPES:
                        self._json(404, {"detail": "not found"})
                    else:
                        self._send(200, _static(name), STATIC_TYPES[suffix])
                    return
                if path == "/login":
                    self._login_page(200, "", parse_qs(url.query).get("next", ["/"])[0])
                    return
                pages: dict[str, tuple[str, Role]] = {"/": ("live.html", "viewer"), "/setup": ("setup.html", "installer")}
                if path in pages:
                    name, role = pages[path]
                    query = parse_qs(url.query)
                    if "token" in query:
                        # Keep the token out of the address bar, history and referrers: move it to a cookie.
                        token = query.pop("token")[0]
                        if self._access(role, page=True) is None:
                            return
                        rest = urlencode(query, doseq=True)
                        location = path + (f"?{rest}" if rest else "")
                        self._send(303, b"", "text/plain", {"Location": location, "Set-Cookie": self._cookie(token)})
                        return
                    if self._access(role, page=True) is not None:
                        self._send(200, _static(name), "text/html; charset=utf-8")
                    return
                routes: dict[str, tuple[Role, Callable[[Access], None]]] = {
                    "/api/status": ("viewer", self._status),
                    "/stream.mjpg": ("viewer", lambda _: self._stream("plain" in parse_qs(url.query))),
                    "/snapshot.jpg": ("viewer", lambda _: self._snapshot("plain" in parse_qs(url.query))),
                    "/api/setup": ("installer", lambda _: self._setup_call(lambda s: s.setup_state())),
                    "/api/setup/dry-run": ("installer", lambda _: self._setup_call(lambda s: s.dry_run_state())),
                }
                self._route(routes, path)

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                if path == "/login":
                    self._login()
                elif path == "/logout":
                    self._send(303, b"", "text/plain", {"Location": "/login", "Set-Cookie": self._cookie("", 0)})
                else:
                    self._route({"/api/setup/dry-run": ("installer", lambda _: self._edit(lambda s, e: s.start_dry_run(e)))}, path)

            def do_PUT(self) -> None:
                self._route({"/api/setup": ("installer", lambda _: self._edit(lambda s, e: s.save_setup(e)))}, urlsplit(self.path).path)

            def do_DELETE(self) -> None:
                self._route({"/api/setup/dry-run": ("installer", lambda _: self._setup_call(self._stop_dry_run))}, urlsplit(self.path).path)

            def _route(self, routes: dict[str, tuple[Role, Callable[[Access], None]]], path: str) -> None:
                if path not in routes:
                    # Unknown paths are refused like known ones until a token is shown: nothing to probe.
                    if self._access("viewer") is not None:
                        self._json(404, {"detail": f"no such page or endpoint: {path}"})
                    return
                role, run = routes[path]
                access = self._access(role)
                if access is not None:
                    run(access)

            def _status(self, access: Access) -> None:
                self._json(200, {**view.status(), "role": access.role})

            @staticmethod
            def _stop_dry_run(setup: Setup) -> dict[str, object]:
                setup.stop_dry_run()
                return {"active": False}

            def _setup_call(self, call: Callable[[Setup], dict[str, object]]) -> None:
                if view.setup is None:
                    self._json(404, {"detail": "this live view has no setup page"})
                    return
                self._json(200, call(view.setup))

            def _edit(self, call: Callable[[Setup, object], dict[str, object]]) -> None:
                if view.setup is None:
                    self._json(404, {"detail": "this live view has no setup page"})
                    return
                ok, body = self._body()
                if not ok:
                    return
                try:
                    self._json(200, call(view.setup, body))
                except SetupError as exc:
                    self._json(400, {"detail": str(exc)})

            def _login(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(min(length, MAX_BODY)).decode(errors="replace"))
                token = form.get("token", [""])[0].strip()
                next_path = form.get("next", ["/"])[0]
                if not next_path.startswith("/") or next_path.startswith("//"):
                    next_path = "/"
                try:
                    view.tokens.check(token, self.client_address[0], "viewer")
                except Refused as refused:
                    if refused.retry_after_s:
                        self._refuse(refused, page=False)
                    else:
                        self._login_page(refused.status, refused.message, next_path)
                    return
                self._send(303, b"", "text/plain", {"Location": next_path, "Set-Cookie": self._cookie(token)})

            def _snapshot(self, plain: bool) -> None:
                _, jpeg = view.state.snapshot_jpeg(plain=plain)
                if jpeg is None:
                    self._json(503, {"detail": "no frame yet: the camera has not delivered one"})
                else:
                    self._send(200, jpeg, "image/jpeg")

            def _stream(self, plain: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                view.state.viewers += 1
                last = -1
                try:
                    while True:
                        seq, jpeg = view.state.snapshot_jpeg(since=last, plain=plain)
                        if jpeg is not None:
                            last = seq
                            self.wfile.write(
                                b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode() + b"\r\n\r\n"
                            )
                            self.wfile.write(jpeg + b"\r\n")
                        time.sleep(1.0 / view.max_fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    view.state.viewers -= 1

        return Handler
