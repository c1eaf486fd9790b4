"""Real processes on loopback for system tests: a `farz server run`, device agents, and a flaky TCP proxy."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from blob_model import blob_classifier

from farz.demo import server_totals


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def farz_out(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "farz", *args], capture_output=True, text=True, check=True).stdout.strip()


class ServerProcess:
    """``farz server run`` on a fixed port and database, which tests can stop, kill and start again."""

    def __init__(self, database_url: str, port: int | None = None, workers: int = 1) -> None:
        self.database_url = database_url
        self.port = port or free_port()
        self.workers = workers
        self.model_dir = tempfile.mkdtemp(prefix="farz-models-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = {**os.environ, "FARZ_MODEL_DIR": self.model_dir}  # registered models go to a temp folder, not the checkout
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "farz",
                "server",
                "run",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--database-url",
                self.database_url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def counts(self, token: str, site: str) -> dict[str, dict[str, dict[str, int]]]:
        """Per device: counts[direction][class] on the server (all time)."""
        return server_totals(self.url, token, site)


def start_agent(video: Path, model: Path, server_url: str, device_id: str, token: str, data: Path, *extra: str) -> subprocess.Popen[str]:
    token_file = data.parent / f"{device_id}.token"
    token_file.write_text(token)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "farz",
            "device",
            "run",
            "--source",
            str(video),
            "--model",
            str(model),
            "--classifier",
            str(blob_classifier(model)),
            "--server",
            server_url,
            "--token-file",
            str(token_file),
            "--device-id",
            device_id,
            "--data-dir",
            str(data),
            "--no-live-view",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class FlakyProxy:
    """A TCP proxy in front of the server; ``mode(n)`` for connection n: None (pass), "reset" (drop the
    connection after reading the request, before any answer) or "slow" (answer after ``delay_s``)."""

    def __init__(self, target_port: int, mode: Callable[[int], str | None], delay_s: float = 1.5) -> None:
        self.target_port = target_port
        self.mode = mode
        self.delay_s = delay_s
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self.resets = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop = True
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client, self.mode(self.connections)), daemon=True).start()

    def _serve(self, client: socket.socket, mode: str | None) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
        except OSError:
            client.close()
            return
        with client, upstream:
            client.settimeout(30)
            try:
                if mode == "reset":
                    client.recv(65536)
                    self.resets += 1
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    return
                threading.Thread(target=self._pipe, args=(client, upstream, 0.0), daemon=True).start()
                self._pipe(upstream, client, self.delay_s if mode == "slow" else 0.0)
            except OSError:
                return

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, delay_s: float) -> None:
        first = True
        try:
            while data := src.recv(65536):
                if first and delay_s:
                    time.sleep(delay_s)
                first = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
