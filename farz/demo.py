"""``farz demo``: the whole product on one machine — server, one device agent per sample video, dashboard.

Starts ``farz server run`` on loopback with an SQLite file, creates a demo site, devices and tokens,
starts ``farz device run`` on each bundled sample video with the bundled INT8 model (paced in real time
and looping until Ctrl-C or SIGTERM, or once with ``--once``), and prints the dashboard URL, each device's live
view and a read token for the city API. Nothing is downloaded.

Stopping: the server and the agents run in sessions of their own, so a terminal's Ctrl-C (sent to its whole
foreground process group) reaches only ``farz demo``, which then stops the agents first (each finishes its
frame and flushes its outbox) and the server last, each within a bounded grace, killing what outlives it;
further signals meanwhile are ignored. Children are also told to stop if ``farz demo`` itself dies.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType

import yaml

SITE = "demo-site"
# A stop takes at most AGENT_GRACE_S + SERVER_GRACE_S (3.5 s), inside the 5 s a Ctrl-C promises.
AGENT_GRACE_S = 2.5  # to finish the frame and flush the outbox to a live server; then SIGKILL (the outbox keeps the counts)
SERVER_GRACE_S = 1.0  # for uvicorn's shutdown (it closes open live streams after 0.5 s); then SIGKILL
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C, SIGTERM and SIGHUP unwind, so the clean-up stops the agents and the server. Set for SIGINT too:
    a demo started as a background job of a script inherits SIGINT ignored, and would not stop on Ctrl-C."""
    raise KeyboardInterrupt(f"signal {signum}")


def _child_session(parent: int) -> None:
    """In a child before it runs: a session of its own (the terminal's Ctrl-C is not sent to it), and on
    Linux SIGTERM when ``farz demo`` dies, so that no child outlives it."""
    os.setsid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the clean-up below still stops the children
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def spawn(args: list[str], **kwargs: object) -> subprocess.Popen[str]:
    """Start a child of the demo in its own session, stopped when the demo dies."""
    # preexec_fn is safe here: the demo starts its children from its only thread.
    return subprocess.Popen(args, text=True, preexec_fn=partial(_child_session, os.getpid()), **kwargs)  # type: ignore[call-overload, no-any-return]  # noqa: PLW1509


def stop_processes(processes: list[subprocess.Popen[str]], grace_s: float) -> None:
    """SIGTERM to each running process at once, then SIGKILL to any still running after ``grace_s``."""
    running = [p for p in processes if p.poll() is None]
    for p in running:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in running:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def stop_all(devices: list[DemoDevice], server: subprocess.Popen[str] | None) -> None:
    """Agents first (they flush to the server), the server last; no signal may cut this short."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    stop_processes([d.process for d in devices if d.process is not None], AGENT_GRACE_S)
    if server is not None:
        stop_processes([server], SERVER_GRACE_S)


def free_port(preferred: int) -> int:
    """``preferred`` if it is free on loopback, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return int(s.getsockname()[1])
            except OSError:
                continue
    raise OSError("no free port")


def wait_http(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise OSError(f"{url} did not answer within {seconds:.0f} s")


@dataclass
class DemoDevice:
    device_id: str
    video: Path
    live_port: int
    process: subprocess.Popen[str] | None = None


def setup(database_url: str, videos: list[Path]) -> tuple[dict[str, str], dict[str, str]]:
    """Site (with three shifts), one device per video and tokens; returns (device tokens, {'viewer':…, 'reader':…})."""
    from server.auth import create_device, create_site, create_token
    from server.db import make_engine, session_factory
    from server.migrate import migrate
    from server.shifts import set_shift

    migrate(database_url)
    engine = make_engine(database_url)
    with session_factory(engine)() as s:
        create_site(s, SITE, "Demo sorting centre", "Africa/Casablanca", latitude=34.92, longitude=-2.32)
        s.flush()
        for name, start, end in (("morning", "06:00", "14:00"), ("afternoon", "14:00", "22:00"), ("night", "22:00", "06:00")):
            set_shift(s, SITE, name, start, end)  # so that the dashboard's shift report has shifts to show
        devices = {f"demo-{v.stem}": create_device(s, f"demo-{v.stem}", SITE) for v in videos}
        people = {"viewer": create_token(s, "viewer"), "reader": create_token(s, "reader"), "installer": create_token(s, "installer")}
        people["reviewer"] = create_token(s, "reviewer", site_id=SITE, name="demo reviewer")
        s.commit()
    engine.dispose()
    return devices, people


def server_totals(base: str, token: str, site: str = SITE) -> dict[str, dict[str, dict[str, int]]]:
    """Per device: counts[direction][class] as the server has them (all time, week buckets)."""
    query = f"{base}/api/v1/counts?site={site}&bucket=week&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&limit=100000"
    request = urllib.request.Request(query, headers={"Authorization": f"Bearer {token}"})
    out: dict[str, dict[str, dict[str, int]]] = {}
    for p in json.loads(urllib.request.urlopen(request).read())["series"]:
        per = out.setdefault(p["device"], {"in": {}, "out": {}})
        per[p["direction"]][p["class"]] = per[p["direction"]].get(p["class"], 0) + p["count"]
    return out


def run(videos: list[Path], model: Path, data: Path | None, port: int, live_port: int, once: bool, classifier: Path | None = None) -> int:
    """Run the demo; returns the exit code (with ``once``: 0 when server and devices agree)."""
    data = data or Path(tempfile.mkdtemp(prefix="farz-demo-"))
    data.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{data / 'farz.db'}"
    device_tokens, people = setup(database_url, videos)
    port = free_port(port)
    base = f"http://127.0.0.1:{port}"
    devices = [DemoDevice(f"demo-{v.stem}", v, free_port(live_port + i if live_port else 0)) for i, v in enumerate(videos)]
    server: subprocess.Popen[str] | None = None
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop_on_signal)
    with ExitStack() as logs:
        try:
            server_log = logs.enter_context((data / "server.log").open("w"))
            serve = ["server", "run", "--port", str(port), "--database-url", database_url, "--shutdown-timeout", "0.5"]
            server = spawn(
                [sys.executable, "-m", "farz", *serve],
                stdout=server_log,
                stderr=subprocess.STDOUT,
            )
            wait_http(base + "/healthz")
            for d in devices:
                config = _device_config(d, data, base, device_tokens, model, classifier)
                args = [sys.executable, "-m", "farz", "device", "run", "--config", str(config)]
                args += ["--once", "--json"] if once else ["--loop"]
                log = logs.enter_context((data / f"{d.device_id}.log").open("w"))
                d.process = spawn(args, stdout=subprocess.PIPE if once else log, stderr=log)
            _print_addresses(devices, base, people, data, once)
            if once:
                return _finish_once(devices, base, people["reader"])
            try:
                while all(d.process and d.process.poll() is None for d in devices) and server.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                print("\nstopping: devices flush their outboxes, then the server stops", flush=True)
            return 0
        finally:
            stop_all(devices, server)
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _device_config(d: DemoDevice, data: Path, base: str, tokens: dict[str, str], model: Path, classifier: Path | None) -> Path:
    """Write the device's token file and agent config (the setup page saves its edits to it); returns the config."""
    token_file = data / f"{d.device_id}.token"
    token_file.write_text(tokens[d.device_id] + "\n")
    token_file.chmod(0o600)
    config = data / f"{d.device_id}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device_id": d.device_id,
                "site": SITE,
                "server_url": base,
                "token_file": str(token_file),
                "source": str(d.video),
                "model": str(model),
                "classifier": str(classifier) if classifier is not None else None,
                "data_dir": str(data / d.device_id),
                "realtime": True,
                "live_view": {"port": d.live_port, "host": "127.0.0.1"},
                "review": {"sample_rate": 0.25},  # items for /review within the demo's first minute
            },
            sort_keys=False,
        )
    )
    return config


def _print_addresses(devices: list[DemoDevice], base: str, people: dict[str, str], data: Path, once: bool) -> None:
    print(f"dashboard:   {base}/#token={people['viewer']}")
    for d in devices:
        print(f"live view:   http://127.0.0.1:{d.live_port}/?token={people['viewer']}   ({d.device_id}: {d.video.name})")
    print(f"camera setup (installer): http://127.0.0.1:{devices[0].live_port}/setup?token={people['installer']}")
    print(f"review crops (reviewer): {base}/review#token={people['reviewer']}")
    print(f"city API:    curl -H 'Authorization: Bearer {people['reader']}' '{base}/api/v1/sites/{SITE}/summary'")
    print(f"NGSI-LD:     curl -H 'Authorization: Bearer {people['reader']}' '{base}/ngsi-ld/v1/entities?type=SortedWasteObserved'")
    print(f"logs and data in {data}" + ("" if once else "; Ctrl-C stops everything"), flush=True)


def _finish_once(devices: list[DemoDevice], base: str, reader: str) -> int:
    from device.truth import read_truth, truth_path

    summaries = {}
    for d in devices:
        assert d.process is not None and d.process.stdout is not None
        out = d.process.stdout.read()
        d.process.wait()
        if d.process.returncode != 0:
            print(f"{d.device_id} failed (exit {d.process.returncode}); see its log", file=sys.stderr)
            return 1
        summaries[d.device_id] = json.loads(out.strip().splitlines()[-1])["counts"]
    on_server = server_totals(base, reader)
    ok = True
    for d in devices:
        truth_file = truth_path(d.video)
        truth = read_truth(truth_file) if truth_file.exists() else None
        device_counts = summaries[d.device_id]
        server_counts = on_server.get(d.device_id, {"in": {}, "out": {}})
        same = device_counts == server_counts
        ok &= same
        print(
            json.dumps(
                {
                    "device": d.device_id,
                    "video": d.video.name,
                    "truth": truth,
                    "device_counts": device_counts,
                    "server_counts": server_counts,
                    "server_equals_device": same,
                }
            )
        )
    return 0 if ok else 1
