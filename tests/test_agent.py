"""The device agent against a real loopback HTTP server: outages, kill -9, flapping — nothing lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from blob_model import blob_classifier, write_blob_model, write_blob_video
from fake_ingest import FakeIngest

from device.agent import Agent
from device.config import AgentConfig

ITEMS = ["red", "blue", "red", "red", "blue", "red", "blue", "blue", "red"]


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, Path, dict[str, dict[str, int]]]:
    model = write_blob_model(tmp_path / "blob.onnx")
    video = tmp_path / "belt.avi"
    truth = write_blob_video(video, ITEMS)
    return model, video, truth["counts"]  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(model: Path, video: Path, url: str, data: Path, **extra: object) -> AgentConfig:
    base: dict[str, object] = {
        "device_id": "cam-1",
        "source": str(video),
        "model": str(model),
        "classifier": str(blob_classifier(model)),
        "server_url": url,
        "data_dir": str(data),
        "upload_interval_s": 0.1,
        "heartbeat_interval_s": 0.5,
        "request_timeout_s": 1.0,
        "retry_max_s": 0.5,
        "live_view": {"enabled": False},
        "count": {"line": [0.5, 1.0, 0.5, 0.0]},
    }
    base.update(extra)
    return AgentConfig.model_validate(base)


def run_agent(video: Path, model: Path, url: str, data: Path, *flags: str) -> subprocess.Popen[str]:
    """`farz device run` as device cam-1 on ``video``, uploading to ``url``, without a live view."""
    return farz(
        "device",
        "run",
        "--source",
        str(video),
        "--model",
        str(model),
        "--classifier",
        str(blob_classifier(model)),
        "--server",
        url,
        "--device-id",
        "cam-1",
        "--data-dir",
        str(data),
        "--no-live-view",
        *flags,
    )


def farz(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "farz", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_once_uploads_everything_and_its_summary_equals_farz_count(
    scene: tuple[Path, Path, dict[str, dict[str, int]]], tmp_path: Path
) -> None:
    model, video, truth = scene
    server = FakeIngest().start()
    try:
        agent = run_agent(video, model, server.url, tmp_path / "data", "--once", "--json")
        out, err = agent.communicate(timeout=120)
        assert agent.returncode == 0, err
        count = subprocess.run(
            [
                sys.executable,
                "-m",
                "farz",
                "count",
                str(video),
                "--model",
                str(model),
                "--classifier",
                str(blob_classifier(model)),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(out)["counts"] == json.loads(count.stdout)["counts"] == truth
        assert server.totals() == truth
        assert server.heartbeats and server.heartbeats[-1]["model"].startswith("blob-test@sha256:")  # type: ignore[union-attr]
    finally:
        server.stop()


def test_server_down_for_part_of_the_run_then_back_loses_nothing(
    scene: tuple[Path, Path, dict[str, dict[str, int]]], tmp_path: Path
) -> None:
    model, video, truth = scene
    port = free_port()
    agent = Agent(config(model, video, f"http://127.0.0.1:{port}", tmp_path / "data", realtime=True))
    runner = threading.Thread(target=agent.run)
    runner.start()
    time.sleep(2.0)  # connection refused meanwhile; events wait in the outbox
    assert agent.outbox.depth() > 0
    server = FakeIngest(port=port).start()
    try:
        runner.join(timeout=60)
        left = agent.shutdown(flush_timeout_s=30)
        assert left == 0
        assert server.totals() == truth, f"server {server.totals()} vs truth {truth}"
    finally:
        server.stop()


def test_flapping_server_errors_resets_and_slow_answers_lose_and_double_nothing(
    scene: tuple[Path, Path, dict[str, dict[str, int]]], tmp_path: Path
) -> None:
    model, video, truth = scene
    server = FakeIngest()
    pattern = ["error", None, "reset", "slow", "unavailable", None]
    server.fault = lambda n: pattern[n % len(pattern)]
    server.fault_after_store = True  # the nastiest case: stored, then the answer is lost
    server.slow_s = 1.5  # longer than the agent's 1 s timeout
    server.start()
    try:
        agent = Agent(config(model, video, server.url, tmp_path / "data", realtime=True))
        agent.run()
        assert agent.shutdown(flush_timeout_s=60) == 0
        assert server.totals() == truth
        assert server.duplicates > 0  # retried batches really were re-sent and recognised
    finally:
        server.stop()


def test_sigkill_mid_run_then_restart_loses_nothing_and_counts_nothing_twice(
    scene: tuple[Path, Path, dict[str, dict[str, int]]], tmp_path: Path
) -> None:
    model, video, truth = scene
    server = FakeIngest().start()
    data = tmp_path / "data"
    try:
        first = run_agent(video, model, server.url, data, "--realtime")
        time.sleep(3.0)  # about half the video at its real frame rate
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        partial = sum(sum(v.values()) for v in server.totals().values())
        second = run_agent(video, model, server.url, data, "--once", "--json")
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        assert "resuming" in err
        assert server.totals() == truth, f"server {server.totals()} vs truth {truth} (after the kill it had {partial})"
        assert json.loads(out)["counts"] == truth
    finally:
        server.stop()


def test_sigterm_stops_cleanly_and_flushes(scene: tuple[Path, Path, dict[str, dict[str, int]]], tmp_path: Path) -> None:
    model, video, _ = scene
    server = FakeIngest().start()
    try:
        proc = run_agent(video, model, server.url, tmp_path / "data", "--realtime")
        time.sleep(2.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        from device.outbox import Outbox

        assert Outbox(tmp_path / "data" / "outbox.db").depth() == 0
        assert sum(sum(v.values()) for v in server.totals().values()) >= 1
    finally:
        server.stop()


def test_resuming_after_any_frame_counts_every_item_exactly_once(
    scene: tuple[Path, Path, dict[str, dict[str, int]]], tmp_path: Path
) -> None:
    """A restart resumes after the last committed frame R (its totals saved with it). Whatever R is — even
    with an item on the line at R — the resumed run sends exactly the counts after R and ends at the truth."""
    from device.count import build_pipeline
    from device.outbox import Outbox
    from device.sources import VideoFileSource

    model, video, truth = scene
    pipeline = build_pipeline(model, config(model, video, "", tmp_path / "unused").count, blob_classifier(model))
    events: list[tuple[int, str, str]] = []  # (frame number, direction, class) of the uninterrupted run
    with VideoFileSource(video) as source:
        for number, frame in enumerate(source, start=1):
            events += [(number, e.direction, e.class_name) for e in pipeline.process(frame).events]
    frames = number
    stat = video.resolve().stat()
    key = f"replay:{video.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    for resume_after in range(5, frames, 7):
        data = tmp_path / f"data-{resume_after}"
        before: dict[str, int] = {}
        for number, direction, name in events:
            if number <= resume_after:
                before[f"{direction}:{name}"] = before.get(f"{direction}:{name}", 0) + 1
        outbox = Outbox(data / "outbox.db")
        outbox.commit([], {key: {"frame": resume_after, "totals": before}})
        outbox.close()
        agent = Agent(config(model, video, "", data))
        summary = agent.run()
        assert summary.counts == truth, f"resumed after frame {resume_after}"
        assert agent.shutdown() == sum(1 for e in events if e[0] > resume_after), f"resumed after frame {resume_after}"
