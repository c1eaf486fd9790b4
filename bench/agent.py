"""``farz bench agent``: the agent's frames/s against ``farz count`` on the same file, and its peak memory.

Both run as separate processes on the same video, model and count settings (one agent YAML, which
``farz count --config`` reads too), alternately (``rounds`` times each, the best of each kept, since this
machine is shared and noisy). The agent runs with everything on: the SQLite outbox, the uploader posting to
a loopback sink, heartbeats, privacy masks, and the token-protected live view with a watcher that asks for
``/api/status`` and a masked snapshot with its token twice a second (and once without, refused).
Peak resident memory is each process's own ``ru_maxrss``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Sink(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        data = json.dumps({"accepted": len(body.get("events", [])), "duplicates": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


MASKS = [
    {"name": "operator", "polygon": [[0.0, 0.0], [0.25, 0.0], [0.25, 0.2], [0.0, 0.2]]},
    {"name": "walkway", "polygon": [[0.8, 0.75], [1.0, 0.75], [1.0, 1.0], [0.8, 1.0]]},
]
"""Two privacy masks in corners, away from the count line (they black out pixels, never detections)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_config(folder: Path, video: Path, model: Path, classifier: Path | None, url: str, port: int) -> tuple[Path, str]:
    """An agent YAML (JSON is YAML) with the video's own line, the masks and a live-view token; (its path, the token)."""
    from device.count_config import settings_for_video

    token = "bench-live-" + os.urandom(8).hex()
    (folder / "liveview.token").write_text(token + "\n")
    (folder / "upload.token").write_text("bench\n")
    lines = [line.model_dump(mode="json") for line in settings_for_video(video, None, None).lines]
    config = {
        "device_id": "bench",
        "source": str(video),
        "model": str(model),
        "classifier": str(classifier) if classifier is not None else None,
        "server_url": url,
        "token_file": str(folder / "upload.token"),
        "data_dir": str(folder / "data"),
        "count": {"lines": lines, "masks": MASKS},
        "live_view": {"host": "127.0.0.1", "port": port, "token_file": str(folder / "liveview.token")},
    }
    path = folder / "agent.yaml"
    path.write_text(json.dumps(config, indent=1))
    return path, token


class _Watcher(threading.Thread):
    """Somebody watching the live view: status and a snapshot with the token every ``period_s``."""

    def __init__(self, port: int, token: str, period_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.period_s = f"http://127.0.0.1:{port}", token, period_s
        self.done = threading.Event()
        self.served = 0
        self.refused = 0

    def _get(self, path: str, token: str | None) -> int:
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def run(self) -> None:
        asked_without = False
        while not self.done.wait(self.period_s):
            try:
                if not asked_without and self._get("/api/status", None) == 401:
                    asked_without = True
                    self.refused += 1
                codes = [self._get("/api/status", self.token), self._get("/snapshot.jpg", self.token)]
            except OSError:  # the view is not up yet, or already down
                continue
            self.served += sum(c == 200 for c in codes)


def _run(args: list[str]) -> tuple[dict[str, object], float]:
    """Run ``python -m farz ARGS``; returns (its JSON summary, its peak RSS in MB)."""
    proc = subprocess.Popen([sys.executable, "-m", "farz", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"farz {' '.join(args[:2])} failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
    return json.loads(out.decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024.0


def bench_agent(video: Path, model: Path, rounds: int = 4, classifier: Path | None = None) -> dict[str, object]:
    """Best-of-``rounds`` frames/s of ``farz count`` and ``farz device run --once``, and peak memory (both
    with ``classifier``: the two-stage pipeline; None: the detector's classes)."""
    material = ["--classifier", str(classifier) if classifier is not None else "none"]
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{sink.server_address[1]}"
    count_fps, agent_fps, count_rss, agent_rss = [], [], [], []
    agent_counts: object = None
    count_counts: object = None
    served = refused = 0
    try:
        for r in range(rounds):
            with tempfile.TemporaryDirectory() as folder:
                port = _free_port()
                config, token = _write_config(Path(folder), video, model, classifier, url, port)
                summary, rss = _run(["count", str(video), "--config", str(config), *material, "--json"])
                count_fps.append(float(summary["fps"]))  # type: ignore[arg-type]
                count_rss.append(rss)
                count_counts = summary["counts"]
                watcher = _Watcher(port, token)
                watcher.start()
                try:
                    summary, rss = _run(["device", "run", "--config", str(config), "--device-id", f"bench-{r}", "--once", "--json"])
                finally:
                    watcher.done.set()
                    watcher.join()
                served += watcher.served
                refused += watcher.refused
            agent_fps.append(float(summary["fps"]))  # type: ignore[arg-type]
            agent_rss.append(rss)
            agent_counts = summary["counts"]
    finally:
        sink.shutdown()
        sink.server_close()
    return {
        "video": str(video),
        "model": str(model),
        "count_fps": round(max(count_fps), 2),
        "agent_fps": round(max(agent_fps), 2),
        "agent_over_count": round(max(agent_fps) / max(count_fps), 3),
        "count_peak_rss_mb": round(max(count_rss), 1),
        "agent_peak_rss_mb": round(max(agent_rss), 1),
        "same_counts": agent_counts == count_counts,
        "privacy_masks": len(MASKS),
        "live_view_requests_served": served,
        "live_view_requests_refused": refused,
    }
