"""Device parts one by one: outbox, uploader refusals, live sources (stand-ins), live view, config."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from fake_ingest import FakeIngest

from device.config import EXAMPLE_CONFIG, load_agent_config
from device.count_config import ConfigError
from device.eventid import new_event_id
from device.live_sources import LiveSource, open_live_source
from device.liveview import LiveState
from device.outbox import Outbox, OutboxFull
from device.uploader import Uploader
from vision import Annotator, Detections


def event(i: int) -> dict[str, object]:
    return {
        "event_id": new_event_id(),
        "ts": "2026-11-25T10:00:00.000Z",
        "device_id": "cam-1",
        "line": "line-1",
        "class": "glass",
        "direction": "in",
        "track_id": i,
        "confidence": 0.9,
        "model": "m@sha256:0",
    }


def test_outbox_keeps_events_across_reopen_and_deletes_only_acknowledged(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    events = [event(i) for i in range(5)]
    box.commit(events, {"replay:x": {"frame": 9}})
    box.close()
    box = Outbox(tmp_path / "o.db")
    assert box.depth() == 5 and box.get_state("replay:x") == {"frame": 9}
    assert box.acknowledge([str(events[0]["event_id"]), "not-there"]) == 1
    assert [p.event_id for p in box.pending(10)] == [e["event_id"] for e in events[1:]]


def test_full_outbox_refuses_new_events_loudly_and_stores_none(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_bytes=64 * 1024)
    with pytest.raises(OutboxFull, match="is full"):
        for i in range(10_000):
            box.commit([event(i)])
    before = box.depth()
    with pytest.raises(OutboxFull):
        box.commit([event(0)])
    assert box.depth() == before > 0


def test_uploader_sets_aside_a_batch_the_server_refuses_as_invalid(tmp_path: Path) -> None:
    server = FakeIngest(token="right").start()
    try:
        box = Outbox(tmp_path / "o.db")
        box.commit([event(1)])
        wrong = Uploader(box, server.url, "cam-1", "wrong", lambda: {}, timeout_s=2)
        assert wrong.send_once() is False and box.depth() == 1  # 401: retried later, never dropped
        right = Uploader(box, server.url, "cam-1", "right", lambda: {}, timeout_s=2)
        assert right.send_once() is True and box.depth() == 0 and len(server.events) == 1
    finally:
        server.stop()


def test_a_burst_of_counts_goes_in_few_requests_because_the_uploader_lingers(tmp_path: Path) -> None:
    server = FakeIngest().start()
    box = Outbox(tmp_path / "o.db")
    uploader = Uploader(box, server.url, "cam-1", None, lambda: {}, interval_s=5, heartbeat_s=3600, timeout_s=2, linger_s=1.0)
    uploader.start()
    try:
        for i in range(10):  # ten counts 20 ms apart, the uploader woken for each, as the agent does
            box.commit([event(i)])
            uploader.wake()
            time.sleep(0.02)
        deadline = time.monotonic() + 5
        while box.depth() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert box.depth() == 0 and len(server.events) == 10
        assert server.requests <= 2  # without the linger: one request per count (10 here)
    finally:
        uploader.stop()
        server.stop()


def test_shutdown_flush_gives_up_at_once_when_the_server_is_gone_and_keeps_the_counts(tmp_path: Path) -> None:
    server = FakeIngest().start()
    url = server.url
    server.stop()  # nothing listens at the address any more: connections are refused
    box = Outbox(tmp_path / "o.db")
    box.commit([event(i) for i in range(3)])
    uploader = Uploader(box, url, "cam-1", None, lambda: {}, timeout_s=2)
    uploader.start()
    started = time.monotonic()
    uploader.stop(flush_timeout_s=30)
    assert time.monotonic() - started < 10  # not the 30 s flush timeout
    assert box.depth() == 3 and "Connection" in uploader.stats.last_error


def test_shutdown_flush_retries_a_server_that_answers_with_errors_until_it_takes_the_counts(tmp_path: Path) -> None:
    server = FakeIngest()
    server.fault = lambda n: ["unavailable", "reset", None][min(n, 2)]
    server.start()
    try:
        box = Outbox(tmp_path / "o.db")
        box.commit([event(i) for i in range(3)])
        uploader = Uploader(box, server.url, "cam-1", None, lambda: {}, timeout_s=2)
        assert uploader.flush(30) is True
        assert box.depth() == 0 and len(server.events) == 3
    finally:
        server.stop()


class FlakyCapture:
    """A camera stand-in: delivers ``frames`` frames, then its read fails (a stall or an unplugged camera)."""

    opened = 0

    def __init__(self, frames: int) -> None:
        FlakyCapture.opened += 1
        self.left = frames

    def read(self) -> tuple[bool, np.ndarray | None]:
        time.sleep(0.005)
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, np.zeros((8, 8, 3), np.uint8)

    def release(self) -> None:
        pass


def test_stalled_stream_is_reopened_and_the_gap_reported() -> None:
    FlakyCapture.opened = 0
    source = LiveSource(lambda: FlakyCapture(20), "rtsp://stand-in", max_backoff_s=0.05)
    for got, _ in enumerate(source, start=1):
        if got >= 45:
            break
    source.close()
    assert FlakyCapture.opened >= 3 and source.health.reconnects >= 2 and len(source.health.gaps) >= 2


def test_a_slow_consumer_drops_the_oldest_frames_and_counts_them() -> None:
    source = LiveSource(lambda: FlakyCapture(10_000), "usb:0")
    frames = iter(source)
    for _ in range(5):
        next(frames)
        time.sleep(0.05)  # counting slower than the camera
    source.close()
    assert source.health.dropped > 0


def test_picamera_source_uses_picamera2_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Picamera2:  # the stand-in has picamera2's interface as the agent uses it
        def __init__(self, index: int = 0) -> None:
            calls.append(f"open {index}")

        def create_video_configuration(self, main: dict[str, object]) -> dict[str, object]:
            return {"main": main}

        def configure(self, config: dict[str, object]) -> None:
            calls.append(f"configure {config['main']['format']}")  # type: ignore[index]

        def start(self) -> None:
            calls.append("start")

        def capture_array(self, name: str) -> np.ndarray:
            return np.full((6, 8, 3), 7, np.uint8)

        def stop(self) -> None:
            calls.append("stop")

        def close(self) -> None:
            calls.append("close")

    assert "picamera2" not in sys.modules  # importing the agent did not need it
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=Picamera2))
    source = open_live_source("picamera:1")
    frame = next(iter(source))
    source.close()
    assert frame.shape == (6, 8, 3) and calls[:3] == ["open 1", "configure RGB888", "start"] and calls[-2:] == ["stop", "close"]


def test_nobody_watching_means_no_jpeg_is_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    state = LiveState(Annotator(("glass",)))
    encoded = []
    monkeypatch.setattr("device.liveview.cv2.imencode", lambda *a, **k: encoded.append(1) or (True, np.zeros(1, np.uint8)))
    for _ in range(50):
        state.publish(np.zeros((48, 64, 3), np.uint8), Detections.empty(), {})
    assert encoded == []


def test_example_config_is_valid_and_every_problem_is_reported_with_its_field(tmp_path: Path) -> None:
    good = tmp_path / "agent.yaml"
    good.write_text(EXAMPLE_CONFIG)
    assert load_agent_config(good).device_id == "berkane-c1-cam2"
    bad = tmp_path / "bad.yaml"
    bad.write_text("device_id: cam 1\nsource: nowhere\nserver_url: ftp://x\ncount: {confidence: 2}\nextra: 1\n")
    with pytest.raises(ConfigError) as info:
        load_agent_config(bad)
    lines = str(info.value).splitlines()
    assert {line.split(": ")[1] for line in lines} == {"device_id", "source", "server_url", "count.confidence", "extra"}


def test_a_missing_or_empty_token_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    from device.config import read_token_file

    with pytest.raises(ConfigError, match="cannot read it"):
        read_token_file(tmp_path / "none.token")
    (tmp_path / "empty.token").write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        read_token_file(tmp_path / "empty.token")
    (tmp_path / "ok.token").write_text("farz_abc\n")
    assert read_token_file(tmp_path / "ok.token") == "farz_abc"
