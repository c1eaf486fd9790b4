"""The whole system under faults: real server and device processes on loopback, a video with known truth.

Every case ends with the server's totals equal to the devices' own counts (0 lost, 0 doubled), and the
assertion messages print the numbers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from blob_model import write_blob_model, write_blob_video
from system_helpers import FlakyProxy, ServerProcess, farz_out, start_agent

from farz.demo import server_totals

pytestmark = pytest.mark.slow
ITEMS = ["red", "blue", "red", "red", "blue", "red", "blue", "blue", "red", "red"]


@pytest.fixture
def stage(tmp_path: Path) -> dict[str, object]:
    """A migrated SQLite database with two sites, three devices and a reader token; the model and a video."""
    db = f"sqlite:///{tmp_path / 'farz.db'}"
    farz_out("server", "admin", "create-site", "site-a", "--name", "Site A", "--tz", "Africa/Casablanca", "--database-url", db)
    farz_out("server", "admin", "create-site", "site-b", "--name", "Site B", "--tz", "Europe/Paris", "--database-url", db)
    tokens = {
        d: farz_out("server", "admin", "create-device", d, "--site", s, "--database-url", db)
        for d, s in (("cam-a1", "site-a"), ("cam-a2", "site-a"), ("cam-b1", "site-b"))
    }
    tokens["reader"] = farz_out("server", "admin", "create-token", "--role", "reader", "--database-url", db)
    model = write_blob_model(tmp_path / "blob.onnx")
    video = tmp_path / "belt.avi"
    truth = write_blob_video(video, ITEMS)["counts"]
    return {"db": db, "tokens": tokens, "model": model, "video": video, "truth": truth, "tmp": tmp_path}


def finish(agent: subprocess.Popen[str], timeout: float = 120) -> dict[str, dict[str, int]]:
    out, err = agent.communicate(timeout=timeout)
    assert agent.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])["counts"]  # type: ignore[no-any-return]


def test_device_and_server_processes_count_the_truth_exactly(stage: dict[str, object]) -> None:
    server = ServerProcess(str(stage["db"])).start()
    try:
        tokens = stage["tokens"]
        assert isinstance(tokens, dict)
        agent = start_agent(
            stage["video"], stage["model"], server.url, "cam-a1", tokens["cam-a1"], Path(str(stage["tmp"])) / "a1", "--once", "--json"
        )  # type: ignore[arg-type]
        device = finish(agent)
        on_server = server.counts(tokens["reader"], "site-a")["cam-a1"]
        assert device == on_server == stage["truth"], f"truth {stage['truth']}, device {device}, server {on_server}"
    finally:
        server.stop()


def test_server_down_then_restarted_and_killed_during_ingest_loses_and_doubles_nothing(stage: dict[str, object]) -> None:
    tokens = stage["tokens"]
    assert isinstance(tokens, dict)
    server = ServerProcess(str(stage["db"]))
    tmp = Path(str(stage["tmp"]))
    agent = start_agent(
        stage["video"], stage["model"], server.url, "cam-a1", tokens["cam-a1"], tmp / "a1", "--once", "--json", "--realtime"
    )  # type: ignore[arg-type]
    time.sleep(2.5)  # the server is not there yet: events wait in the outbox
    server.start()
    time.sleep(1.5)
    server.stop(signal.SIGKILL)  # killed while the device keeps posting
    time.sleep(1.0)
    server.start()
    try:
        device = finish(agent)
        on_server = server.counts(tokens["reader"], "site-a")["cam-a1"]
        assert device == on_server == stage["truth"], f"device {device} vs server {on_server} (truth {stage['truth']})"
    finally:
        server.stop()


def test_device_killed_with_sigkill_and_restarted_loses_and_doubles_nothing(stage: dict[str, object]) -> None:
    tokens = stage["tokens"]
    assert isinstance(tokens, dict)
    server = ServerProcess(str(stage["db"])).start()
    tmp = Path(str(stage["tmp"]))
    try:
        first = start_agent(stage["video"], stage["model"], server.url, "cam-a1", tokens["cam-a1"], tmp / "a1", "--realtime")  # type: ignore[arg-type]
        time.sleep(3.0)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = start_agent(stage["video"], stage["model"], server.url, "cam-a1", tokens["cam-a1"], tmp / "a1", "--once", "--json")  # type: ignore[arg-type]
        device = finish(second)
        on_server = server.counts(tokens["reader"], "site-a")["cam-a1"]
        assert device == on_server == stage["truth"], f"device {device} vs server {on_server} (truth {stage['truth']})"
    finally:
        server.stop()


def test_network_flaps_resets_and_slow_answers_lose_and_double_nothing(stage: dict[str, object]) -> None:
    tokens = stage["tokens"]
    assert isinstance(tokens, dict)
    server = ServerProcess(str(stage["db"])).start()
    proxy = FlakyProxy(server.port, lambda n: ("reset", None, "slow", "reset", "slow", None)[n % 6], delay_s=1.5)
    try:
        config = Path(str(stage["tmp"])) / "agent.yaml"
        config.write_text(
            f"device_id: cam-a1\nsource: {stage['video']}\nrequest_timeout_s: 1\nretry_max_s: 0.5\nupload_interval_s: 0.1\n"
            "live_view: {enabled: false}\n"
        )
        agent = start_agent(
            stage["video"],
            stage["model"],
            proxy.url,
            "cam-a1",
            tokens["cam-a1"],
            Path(str(stage["tmp"])) / "a1",  # type: ignore[arg-type]
            "--config",
            str(config),
            "--once",
            "--json",
            "--realtime",
        )
        device = finish(agent)
        on_server = server.counts(tokens["reader"], "site-a")["cam-a1"]
        assert proxy.resets > 0
        assert device == on_server == stage["truth"], f"device {device} vs server {on_server} after {proxy.resets} resets"
    finally:
        proxy.close()
        server.stop()


def test_several_devices_on_two_sites_are_aggregated_per_site_and_isolated(stage: dict[str, object]) -> None:
    tokens = stage["tokens"]
    assert isinstance(tokens, dict)
    server = ServerProcess(str(stage["db"])).start()
    tmp = Path(str(stage["tmp"]))
    try:
        agents = {
            d: start_agent(stage["video"], stage["model"], server.url, d, tokens[d], tmp / d, "--once", "--json")  # type: ignore[arg-type]
            for d in ("cam-a1", "cam-a2", "cam-b1")
        }
        device = {d: finish(a) for d, a in agents.items()}
        site_a = server.counts(tokens["reader"], "site-a")
        site_b = server.counts(tokens["reader"], "site-b")
        assert set(site_a) == {"cam-a1", "cam-a2"} and set(site_b) == {"cam-b1"}
        assert site_a["cam-a1"] == device["cam-a1"] and site_a["cam-a2"] == device["cam-a2"] and site_b["cam-b1"] == device["cam-b1"]
        assert all(v == stage["truth"] for v in device.values())
    finally:
        server.stop()


def test_farz_demo_once_puts_every_device_count_on_the_server(tmp_path: Path) -> None:
    """The bundled INT8 model on the bundled sample videos, through device agents and the server."""
    repo = Path(__file__).resolve().parent.parent
    baseline = json.loads((repo / "tests" / "baselines" / "quality.json").read_text())["videos"]
    proc = subprocess.run(
        [sys.executable, "-m", "farz", "demo", "--once", "--data", str(tmp_path / "demo"), "--port", "0", "--live-port", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(baseline) >= 2
    for row in rows:
        assert row["server_equals_device"], row
        assert row["device_counts"] == baseline[row["video"]]["counts"], f"{row['video']}: {row['device_counts']} vs baseline"


def test_farz_demo_stopped_by_sigterm_stops_its_server_and_agents(tmp_path: Path) -> None:
    """`kill` (not Ctrl-C) of a looping demo must not leave agents or the server running."""
    import re
    import socket

    proc = subprocess.Popen(
        [sys.executable, "-m", "farz", "demo", "--data", str(tmp_path / "demo"), "--port", "0", "--live-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("logs and data in"):
                break
        ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)/", "".join(lines))]
        assert len(ports) >= 3, "".join(lines)  # the dashboard and one live view per sample video
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, "".join(lines) + proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    for port in ports:
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(1)
            s.connect(("127.0.0.1", port))
    for log in (tmp_path / "demo").glob("demo-*.log"):
        assert "flushing the outbox" in log.read_text(), f"{log.name}: the agent did not stop on its signal"


def process_tree(root: int) -> set[int]:
    """Every living descendant of ``root`` (from /proc; zombies count as gone)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def drain(stream: Any) -> None:
    """Read a response until the server closes it, as a browser holds a live stream open."""
    with contextlib.suppress(OSError, ValueError, http.client.HTTPException):  # cut mid-chunk when the server stops
        while stream.read(64):
            pass


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc (Linux)")
def start_demo(data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "farz", "demo", "--data", str(data), "--port", "0", "--live-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )


def test_ctrl_c_to_the_demos_process_group_stops_agents_then_server_within_5_s(tmp_path: Path) -> None:
    """A terminal's Ctrl-C sends SIGINT to its whole foreground process group, here with a dashboard's live
    stream open: every process of the demo is gone within 5 s and both agents flushed to the live server."""
    import re
    import threading
    import urllib.request

    data = tmp_path / "demo"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the demo inherits SIGINT ignored, as a script's
    try:  # background job does: it must still stop on Ctrl-C
        proc = start_demo(data)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("logs and data in"):
                break
        text = "".join(lines)
        base, viewer = re.search(r"dashboard:\s+(http://127\.0\.0\.1:\d+)/#token=(\S+)", text).groups()  # type: ignore[union-attr]
        reader = re.search(r"Bearer (\S+)'", text).group(1)  # type: ignore[union-attr]
        deadline = time.monotonic() + 120
        while len(server_totals(base, reader)) < 2:  # both agents are counting (their signal handlers are set)
            assert time.monotonic() < deadline and proc.poll() is None, text
            time.sleep(0.5)
        stream = urllib.request.Request(f"{base}/api/v1/live?site=demo-site", headers={"Authorization": f"Bearer {viewer}"})
        live = urllib.request.urlopen(stream)  # a dashboard watching: uvicorn must not wait for it to close
        threading.Thread(target=drain, args=(live,), daemon=True).start()
        tree = process_tree(proc.pid)
        assert len(tree) >= 3, tree  # the server and one agent per sample video
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        try:
            assert proc.wait(timeout=5) == 0
        except subprocess.TimeoutExpired:
            logs = "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-12:]) for log in sorted(data.glob("*.log")))
            pytest.fail(f"the demo still ran 5 s after Ctrl-C; its processes {process_tree(proc.pid)}; the last lines of its logs:\n{logs}")
        while any(alive(pid) for pid in tree) and time.monotonic() - started < 5:
            time.sleep(0.05)
        assert not [pid for pid in tree if alive(pid)], "left running after Ctrl-C"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for log in data.glob("demo-*.log"):
        assert "flushing the outbox" in log.read_text() and "the server is gone" not in log.read_text(), log.name
    for outbox in data.glob("demo-*/outbox.db"):
        with sqlite3.connect(outbox) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0, f"{outbox}: counts left unsent"


def test_counts_the_server_refuses_one_by_one_are_kept_aside_on_the_device_and_the_rest_served(stage: dict[str, object]) -> None:
    """A count of a class outside the taxonomy (a model of another taxonomy, a tampered outbox) is refused by
    the real server with its reason; the uploader moves it to the outbox's rejected table and deletes only
    what the server took."""
    from device.eventid import new_event_id
    from device.outbox import Outbox
    from device.uploader import Uploader

    server = ServerProcess(str(stage["db"])).start()
    try:
        tokens = stage["tokens"]
        assert isinstance(tokens, dict)
        box = Outbox(Path(str(stage["tmp"])) / "outbox.db")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        events = [
            {"event_id": new_event_id(), "ts": stamp, "device_id": "cam-a1", "line": "line-1", "class": cls, "direction": "in",
             "track_id": i, "confidence": 0.9, "model": "m@sha256:0"}
            for i, cls in enumerate(["glass", "uranium", "metal"])
        ]  # fmt: skip
        box.commit(events)
        uploader = Uploader(box, server.url, "cam-a1", tokens["cam-a1"], lambda: {}, timeout_s=5)
        assert uploader.send_once() is True
        assert box.depth() == 0 and box.rejected_count() == 1 and uploader.stats.rejected == 1
        with sqlite3.connect(box.path) as conn:
            kept, reason = conn.execute("SELECT body, reason FROM rejected").fetchone()
        assert json.loads(kept)["class"] == "uranium" and "taxonomy" in reason
        assert server_totals(server.url, tokens["reader"], "site-a") == {"cam-a1": {"in": {"glass": 1, "metal": 1}, "out": {}}}
    finally:
        server.stop()
