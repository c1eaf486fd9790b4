"""``farz bench agent``: the agent's frames/s against ``farz count`` on the same file, and its peak memory.

Both run as separate processes on the same video and model, alternately (``rounds`` times each, the
best of each kept, since this machine is shared and noisy). The agent runs with everything on: the
SQLite outbox, the uploader posting to a loopback sink, heartbeats and the live view (nobody watching).
Peak resident memory is each process's own ``ru_maxrss``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
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


def bench_agent(video: Path, model: Path, rounds: int = 2, classifier: Path | None = None) -> dict[str, object]:
    """Best-of-``rounds`` frames/s of ``farz count`` and ``farz device run --once``, and peak memory (both
    with ``classifier``: the two-stage pipeline; None: the detector's classes)."""
    material = ["--classifier", str(classifier) if classifier is not None else "none"]
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{sink.server_address[1]}"
    count_fps, agent_fps, count_rss, agent_rss = [], [], [], []
    agent_counts: object = None
    count_counts: object = None
    try:
        for r in range(rounds):
            summary, rss = _run(["count", str(video), "--model", str(model), *material, "--json"])
            count_fps.append(float(summary["fps"]))  # type: ignore[arg-type]
            count_rss.append(rss)
            count_counts = summary["counts"]
            with tempfile.TemporaryDirectory() as data:
                summary, rss = _run(
                    [
                        "device",
                        "run",
                        "--source",
                        str(video),
                        "--model",
                        str(model),
                        *material,
                        "--server",
                        url,
                        "--device-id",
                        f"bench-{r}",
                        "--data-dir",
                        data,
                        "--live-port",
                        "0",
                        "--once",
                        "--json",
                    ]
                )
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
    }
