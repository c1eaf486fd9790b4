"""The staff live view on the device: an HTML page, an annotated MJPEG stream, ``/api/status``, ``/healthz``.

The counting loop only hands over references (latest frame, its detections, totals). Annotation and
JPEG encoding happen in the viewer's own HTTP thread, at most ``max_fps`` times a second, and only while
somebody watches — so nobody watching costs counting nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

from device.sources import Frame
from vision import Annotator, Detections

log = logging.getLogger("farz.liveview")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>farz live view</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{padding:.6rem 1rem;background:#1d3b2a}h1{font-size:1.1rem;margin:0}
main{display:flex;flex-wrap:wrap;gap:1rem;padding:1rem}
img{width:min(100%,960px);height:auto;background:#000;border:1px solid #333}
table{border-collapse:collapse;min-width:14rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #333;text-align:right}
th:first-child,td:first-child{text-align:left}.muted{color:#999;font-size:.85rem}
</style></head><body>
<header><h1>farz · <span id="device">device</span></h1></header>
<main><img id="stream" src="/stream.mjpg" alt="live camera view with counted items">
<section><table><thead><tr><th>class</th><th>in</th><th>out</th></tr></thead><tbody id="totals"></tbody></table>
<p class="muted" id="health"></p></section></main>
<script>
async function refresh(){
  try{
    const s=await (await fetch('/api/status')).json();
    document.getElementById('device').textContent=s.device_id;
    const classes=[...new Set([...Object.keys(s.counts.in),...Object.keys(s.counts.out)])].sort();
    const row=c=>`<tr><td>${c}</td><td>${s.counts.in[c]||0}</td><td>${s.counts.out[c]||0}</td></tr>`;
    document.getElementById('totals').innerHTML=classes.map(row).join('')||'<tr><td colspan=3>nothing counted yet</td></tr>';
    document.getElementById('health').textContent=`${s.fps.toFixed(1)} frames/s · outbox ${s.outbox_depth} · dropped ${s.dropped_frames}`;
  }catch(e){document.getElementById('health').textContent='device not answering';}
}
refresh();setInterval(refresh,1000);
</script></body></html>
"""


class LiveState:
    """The latest frame, its tracked detections and the totals, shared with the live view."""

    def __init__(self, annotator: Annotator) -> None:
        self.annotator = annotator
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

    def snapshot_jpeg(self, since: int = -1, quality: int = 75) -> tuple[int, bytes | None]:
        """(sequence number, annotated JPEG of the latest frame), encoded on the caller's thread;
        no JPEG when there is no frame yet or none newer than ``since``."""
        with self._lock:
            frame, dets, totals, seq = self._frame, self._detections, dict(self._totals), self._seq
        if frame is None or seq == since:
            return seq, None
        ok, buf = cv2.imencode(".jpg", self.annotator.draw(frame, dets, totals), [cv2.IMWRITE_JPEG_QUALITY, quality])
        return seq, buf.tobytes() if ok else None


class LiveView:
    """HTTP server for the live view, running in a background thread."""

    def __init__(self, state: LiveState, status: Callable[[], dict[str, object]], host: str, port: int, max_fps: float = 10.0) -> None:
        self.state = state
        self.status = status
        self.max_fps = max_fps
        handler = self._handler()
        self.server = ThreadingHTTPServer((host, port), handler)
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
            def log_message(self, format: str, *args: object) -> None:
                log.debug("%s %s", self.address_string(), format % args)

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/":
                    self._send(200, PAGE.encode(), "text/html; charset=utf-8")
                elif path == "/healthz":
                    self._send(200, b'{"ok":true}', "application/json")
                elif path == "/api/status":
                    self._send(200, json.dumps(view.status()).encode(), "application/json")
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self._send(404, b'{"detail":"not found"}', "application/json")

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                view.state.viewers += 1
                last = -1
                try:
                    while True:
                        seq, jpeg = view.state.snapshot_jpeg(since=last)
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
