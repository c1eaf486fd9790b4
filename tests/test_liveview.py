"""The device live view: tokens on every request but /healthz, server tokens cached for offline use,
failed attempts rate-limited, tokens never logged; the setup API (dry run, atomic save, applied between
frames without double counts); privacy masks on the stream, hard samples and uploads."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from blob_model import blob_classifier, write_blob_model, write_blob_video
from masks import MASK, masked_area_is_black, pattern
from system_helpers import ServerProcess, farz_out

from device.agent import Agent
from device.config import AgentConfig, load_agent_config
from device.count_config import load_count_settings
from device.liveauth import Refused, TokenChecker
from device.liveview import LiveState, LiveView
from device.setup import SetupError
from vision import Annotator, Detections

LOCAL = "farzlv_local-installer-token"
ITEMS = ["red", "blue", "red", "red", "blue", "red", "blue", "blue", "red"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeServer:
    """``/api/v1/whoami`` answers by token; ``down`` makes it unreachable."""

    def __init__(self, answers: dict[str, dict[str, object]]) -> None:
        self.answers = answers
        self.calls = 0
        self.down = False

    def __call__(self, token: str) -> tuple[int, dict[str, object]]:
        self.calls += 1
        if self.down:
            raise OSError("connection refused")
        return (200, self.answers[token]) if token in self.answers else (401, {})


def request(
    url: str, token: str | None = None, method: str = "GET", body: object = None, cookie: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if cookie:
        headers["Cookie"] = cookie
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=data, method=method, headers=headers), timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def view() -> tuple[str, FakeServer, Clock]:
    clock = Clock()
    server = FakeServer(
        {
            "viewer-ok": {"role": "viewer", "site": "site-a"},
            "viewer-any-site": {"role": "reader", "site": None},
            "viewer-other-site": {"role": "viewer", "site": "site-b"},
            "admin": {"role": "admin", "site": None},
            "scientist": {"role": "scientist", "site": None},
        }
    )
    checker = TokenChecker(LOCAL, "site-a", server, fresh_s=60, stale_s=3600, clock=clock)
    state = LiveState(Annotator(("glass",)))
    state.publish(np.zeros((48, 64, 3), np.uint8), Detections.empty(), {})
    live = LiveView(state, lambda: {"device_id": "cam-1", "counts": {"in": {"glass": 2}, "out": {}}}, checker)
    live.start()
    yield f"http://127.0.0.1:{live.port}", server, clock
    live.stop()


PRIVATE = ["/", "/api/status", "/stream.mjpg", "/snapshot.jpg", "/setup", "/api/setup", "/api/setup/dry-run", "/no-such-page"]


def test_every_request_but_healthz_needs_a_token_and_says_so(view: tuple[str, FakeServer, Clock]) -> None:
    base, _, _ = view
    status, _, body = request(base + "/healthz")
    assert status == 200 and json.loads(body) == {"ok": True}
    for path in PRIVATE:
        status, headers, body = request(base + path)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), path
        assert b"needs a token" in body, path
    for path, method in [("/api/setup", "PUT"), ("/api/setup/dry-run", "POST"), ("/api/setup/dry-run", "DELETE")]:
        assert request(base + path, method=method, body={})[0] == 401, (method, path)
    status, _, body = request(base + "/api/status", LOCAL)
    assert status == 200 and json.loads(body)["counts"]["in"]["glass"] == 2 and json.loads(body)["role"] == "installer"
    assert request(base + "/snapshot.jpg", LOCAL)[2][:2] == b"\xff\xd8"
    assert request(base + "/no-such-page", LOCAL)[0] == 404


def test_a_token_in_the_address_moves_to_an_http_only_cookie(view: tuple[str, FakeServer, Clock]) -> None:
    base, _, _ = view
    status, headers, _ = request(base + f"/?token={LOCAL}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, _, page = request(base + "/", cookie=cookie.split(";")[0])
    assert status == 200 and b"farz live view" in page
    assert request(base + "/api/status", cookie="farz_live=wrong")[0] == 401


def test_server_tokens_by_role_and_site(view: tuple[str, FakeServer, Clock]) -> None:
    base, _, _ = view
    assert request(base + "/api/status", "viewer-ok")[0] == 200
    assert request(base + "/api/status", "viewer-any-site")[0] == 200
    status, _, body = request(base + "/api/status", "viewer-other-site")
    assert status == 403 and b"site-b" in body
    status, _, body = request(base + "/api/status", "scientist")
    assert status == 403 and b"scientist" in body
    assert request(base + "/api/status", "nobody")[0] == 401
    status, _, body = request(base + "/api/setup", "viewer-ok")
    assert status == 403 and b"installer" in body
    assert json.loads(request(base + "/api/status", "admin")[2])["role"] == "installer"


def test_a_token_the_server_accepted_still_opens_the_view_while_the_server_is_down(view: tuple[str, FakeServer, Clock]) -> None:
    base, server, clock = view
    assert request(base + "/api/status", "viewer-ok")[0] == 200
    calls = server.calls
    assert request(base + "/api/status", "viewer-ok")[0] == 200 and server.calls == calls  # fresh answer: not asked again
    server.down = True
    clock.now += 120  # stale: asked again, unreachable, the earlier answer stands
    assert request(base + "/api/status", "viewer-ok")[0] == 200 and server.calls == calls + 1
    status, _, body = request(base + "/api/status", "viewer-any-site")  # never seen: cannot be checked
    assert status == 401 and b"unreachable" in body
    assert request(base + "/api/status", LOCAL)[0] == 200  # the device-local token needs no server
    clock.now += 3600  # past the bound on offline use
    assert request(base + "/api/status", "viewer-ok")[0] == 401


def test_failed_attempts_are_rate_limited_per_address() -> None:
    clock = Clock()
    checker = TokenChecker(LOCAL, "site-a", None, max_failures=5, failure_window_s=60, clock=clock)
    for _ in range(5):
        with pytest.raises(Refused) as refused:
            checker.check("guess", "10.0.0.9")
        assert refused.value.status == 401
    with pytest.raises(Refused) as refused:
        checker.check(LOCAL, "10.0.0.9")  # even the right token waits out the lock
    assert refused.value.status == 403 and "too many" in refused.value.message and refused.value.retry_after_s
    assert checker.check(LOCAL, "10.0.0.10").role == "installer"  # another address is not locked out
    clock.now += 61
    assert checker.check(LOCAL, "10.0.0.9").role == "installer"


def test_rate_limit_refusal_over_http_carries_retry_after(view: tuple[str, FakeServer, Clock]) -> None:
    base, _, _ = view
    for _ in range(10):
        assert request(base + "/api/status", "guess")[0] == 401
    status, headers, body = request(base + "/api/status", LOCAL)
    assert status == 403 and int(headers["Retry-After"]) > 0 and b"too many" in body


def test_tokens_never_appear_in_logs(view: tuple[str, FakeServer, Clock], caplog: pytest.LogCaptureFixture) -> None:
    base, _, _ = view
    caplog.set_level(logging.DEBUG)
    request(base + f"/?token={LOCAL}")
    request(base + f"/api/status?token={LOCAL}")
    request(base + "/api/status?token=secret-guess-1")
    request(base + "/api/status", "secret-guess-2")
    time.sleep(0.2)
    assert caplog.records, "the view logged nothing at DEBUG"
    assert LOCAL not in caplog.text and "secret-guess" not in caplog.text


# The setup API, with a real agent -----------------------------------------------------------------------


def write_config(tmp_path: Path, video: Path, model: Path, **extra: object) -> Path:
    raw: dict[str, object] = {
        "device_id": "cam-1",
        "site": "site-a",
        "source": str(video),
        "model": str(model),
        "classifier": str(blob_classifier(model)),
        "data_dir": str(tmp_path / "data"),
        "live_view": {"enabled": False},
        "count": {"lines": [{"name": "belt-1", "points": [0.5, 1.0, 0.5, 0.0]}]},
    }
    raw.update(extra)
    path = tmp_path / "agent.yaml"
    path.write_text("# hand-written\n" + yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, Path]:
    model = write_blob_model(tmp_path / "blob.onnx")
    video = tmp_path / "belt.avi"
    write_blob_video(video, ITEMS)
    return model, video


FLIPPED = {"lines": [{"name": "belt-1", "points": [0.5, 0.0, 0.5, 1.0]}]}


def test_a_saved_setup_is_written_atomically_and_farz_count_reads_the_same_file(scene: tuple[Path, Path], tmp_path: Path) -> None:
    model, video = scene
    path = write_config(tmp_path, video, model)
    before = path.read_text()
    agent = Agent(load_agent_config(path), config_path=path)
    answer = agent.save_setup({**FLIPPED, "masks": [{"name": "desk", "polygon": [[0, 0], [0.2, 0], [0.2, 0.2]]}]})
    assert Path(answer["backup"]).read_text() == before  # the old file is kept
    assert not list(tmp_path.glob(".agent.yaml.*.tmp"))
    saved = load_agent_config(path)  # still valid, as check-config reads it
    assert saved.count.lines[0].points == (0.5, 0.0, 0.5, 1.0) and saved.count.masks[0].name == "desk"
    assert saved.device_id == "cam-1" and saved.model == model  # the rest of the file is untouched
    summary = agent.run()  # the edit is applied from the first frame
    agent.shutdown(0)
    assert sum(summary.counts["in"].values()) == 0 and sum(summary.counts["out"].values()) == len(ITEMS)
    assert load_count_settings(path).lines[0].points == (0.5, 0.0, 0.5, 1.0)
    counted = json.loads(
        farz_out("count", str(video), "--model", str(model), "--classifier", str(blob_classifier(model)), "--config", str(path), "--json")
    )
    assert counted["counts"] == summary.counts


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"lines": [{"name": "belt-1", "points": [0.5, 1.2, 0.5, 0.0]}]}, "count.lines.0.points"),
        ({"lines": [{"name": "a", "points": [0.1, 0.1, 0.1, 0.1]}]}, "count.lines.0.points"),
        ({"masks": [{"name": "m", "polygon": [[0, 0], [1, 1]]}]}, "count.masks.0.polygon"),
        ({"confidence": 0.9}, "count.confidence"),
        (
            {"lines": [{"name": "x", "points": [0, 0, 1, 1]}], "zones": [{"name": "x", "polygon": [[0, 0], [1, 0], [1, 1]]}]},
            "names must be unique",
        ),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_edit_is_refused_with_its_field_named_and_the_file_untouched(
    scene: tuple[Path, Path], tmp_path: Path, edit: object, field: str
) -> None:
    model, video = scene
    path = write_config(tmp_path, video, model)
    before = path.read_text()
    agent = Agent(load_agent_config(path), config_path=path)
    with pytest.raises(SetupError) as refused:
        agent.save_setup(edit)
    assert field in str(refused.value)
    with pytest.raises(SetupError):
        agent.start_dry_run(edit)
    assert path.read_text() == before and not path.with_name("agent.yaml.bak").exists()


def test_without_a_config_file_an_edit_can_be_tried_not_saved(scene: tuple[Path, Path], tmp_path: Path) -> None:
    model, video = scene
    agent = Agent(load_agent_config(write_config(tmp_path, video, model)))
    assert agent.start_dry_run(FLIPPED)["active"] is True
    with pytest.raises(SetupError, match="without a config file"):
        agent.save_setup(FLIPPED)


def run_with_edit_at(path: Path, frame: int, edit: dict[str, object]) -> tuple[dict[str, dict[str, int]], Agent]:
    """Run the agent on its video; ``edit`` is saved from another thread while frame ``frame`` is processed."""
    agent = Agent(load_agent_config(path), config_path=path)
    process = agent.pipeline.process

    def process_and_edit(image: np.ndarray) -> object:
        if agent.pipeline.frame_index + 1 == frame:
            worker = threading.Thread(target=agent.save_setup, args=(edit,))
            worker.start()
            worker.join()
        return process(image)

    agent.pipeline.process = process_and_edit  # type: ignore[method-assign]
    summary = agent.run()
    agent.shutdown(0)
    return summary.counts, agent


@pytest.mark.parametrize("frame", [5, 9, 10, 11, 12, 33, 57, 150])
def test_a_line_edited_mid_run_counts_every_item_once(scene: tuple[Path, Path], tmp_path: Path, frame: int) -> None:
    """The line is flipped at every kind of moment (items before, on and after the line): each item is
    counted exactly once, in before the edit and out after it, and the outbox holds the same."""
    model, video = scene
    path = write_config(tmp_path, video, model)
    counts, _ = run_with_edit_at(path, frame, FLIPPED)
    total = sum(counts["in"].values()) + sum(counts["out"].values())
    assert total == len(ITEMS), counts
    assert sum(counts["out"].values()) > 0
    with sqlite3.connect(tmp_path / "data" / "outbox.db") as db:
        rows = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert rows == len(ITEMS)


def test_a_dry_run_counts_with_the_edit_beside_the_real_counters(scene: tuple[Path, Path], tmp_path: Path) -> None:
    model, video = scene
    agent = Agent(load_agent_config(write_config(tmp_path, video, model)))
    agent.start_dry_run(FLIPPED)
    summary = agent.run()
    agent.shutdown(0)
    dry = agent.dry_run_state()
    assert sum(summary.counts["in"].values()) == len(ITEMS)  # the real counts are unchanged
    assert dry["active"] and sum(dry["totals"]["out"].values()) == len(ITEMS) and dry["counted"] == len(ITEMS)  # type: ignore[index, union-attr]
    assert {e["direction"] for e in dry["events"]} == {"out"}  # type: ignore[union-attr]
    agent.stop_dry_run()
    assert agent.dry_run_state() == {"active": False}


def test_the_setup_api_over_http(scene: tuple[Path, Path], tmp_path: Path) -> None:
    model, video = scene
    path = write_config(
        tmp_path,
        video,
        model,
        live_view={"host": "127.0.0.1", "port": 0, "token_file": str(tmp_path / "lv.token")},
        loop=True,
        realtime=True,
    )
    (tmp_path / "lv.token").write_text(LOCAL)
    agent = Agent(load_agent_config(path), config_path=path)
    worker = threading.Thread(target=agent.run)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while agent.live_view is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agent.live_view is not None
        base = f"http://127.0.0.1:{agent.live_view.port}"
        status, _, body = request(base + "/api/setup", LOCAL)
        assert status == 200 and json.loads(body)["count"]["lines"][0]["points"] == [0.5, 1.0, 0.5, 0.0]
        status, _, body = request(base + "/api/setup", LOCAL, "PUT", {"lines": [{"name": "belt-1", "points": [0.5, 1.5, 0.5, 0.0]}]})
        assert status == 400 and "count.lines.0.points" in json.loads(body)["detail"]
        req = urllib.request.Request(base + "/api/setup", data=b"lines=1", method="PUT", headers={"Authorization": f"Bearer {LOCAL}"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 415  # a form post from another site cannot change the setup
        assert request(base + "/api/setup/dry-run", LOCAL, "POST", FLIPPED)[0] == 200
        deadline = time.monotonic() + 20
        while json.loads(request(base + "/api/setup/dry-run", LOCAL)[2]).get("counted", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert json.loads(request(base + "/api/setup/dry-run", LOCAL)[2])["events"][0]["direction"] == "out"
        status, _, body = request(base + "/api/setup", LOCAL, "PUT", FLIPPED)
        assert status == 200 and json.loads(body)["count"]["lines"][0]["points"] == [0.5, 0.0, 0.5, 1.0]
        outs = lambda: sum(json.loads(request(base + "/api/status", LOCAL)[2])["counts"]["out"].values())  # noqa: E731
        deadline = time.monotonic() + 20
        while outs() < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert outs() >= 1
        assert load_agent_config(path).count.lines[0].points == (0.5, 0.0, 0.5, 1.0)
    finally:
        agent.stop()
        worker.join(timeout=30)
        agent.shutdown(0)


# Privacy masks ------------------------------------------------------------------------------------------


def test_masked_pixels_never_leave_the_device(tmp_path: Path) -> None:
    """A known pattern inside a privacy mask: streamed, kept as a hard sample and uploaded — black everywhere."""
    db_file = tmp_path / "farz.db"
    db = f"sqlite:///{db_file}"
    farz_out("server", "admin", "create-site", "site-a", "--name", "Site A", "--tz", "Africa/Casablanca", "--database-url", db)
    device_token = farz_out("server", "admin", "create-device", "cam-1", "--site", "site-a", "--database-url", db)
    viewer = farz_out("server", "admin", "create-token", "--role", "viewer", "--site", "site-a", "--database-url", db)
    (tmp_path / "device.token").write_text(device_token)
    model = write_blob_model(tmp_path / "unsure.onnx", score=0.4)  # every detection is unsure: hard samples
    video = tmp_path / "belt.avi"
    write_blob_video(video, ITEMS, background=pattern())
    server = ServerProcess(db).start()
    path = write_config(
        tmp_path,
        video,
        model,
        server_url=server.url,
        token_file=str(tmp_path / "device.token"),
        upload_interval_s=0.2,
        hard_samples={"min_interval_s": 0.2},
        live_view={"host": "127.0.0.1", "port": 0},
        loop=True,
        realtime=True,
        count={"lines": [{"name": "belt-1", "points": [0.5, 1.0, 0.5, 0.0]}], "masks": [{"name": "desk", "polygon": MASK}]},
    )
    agent = Agent(AgentConfig.model_validate(yaml.safe_load(path.read_text())), config_path=path)
    worker = threading.Thread(target=agent.run)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while agent.live_view is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agent.live_view is not None
        base = f"http://127.0.0.1:{agent.live_view.port}"
        time.sleep(1.0)
        for plain in ("", "?plain=1"):
            status, _, jpeg = request(base + "/snapshot.jpg" + plain, viewer)  # a server viewer token, checked there
            assert status == 200
            masked_area_is_black(jpeg)
        with urllib.request.urlopen(
            urllib.request.Request(base + "/stream.mjpg", headers={"Authorization": f"Bearer {viewer}"}), timeout=10
        ) as s:
            chunk = s.read(60_000)
        start = chunk.index(b"\xff\xd8")
        masked_area_is_black(chunk[start : chunk.index(b"\xff\xd9", start) + 2])
        with sqlite3.connect(db_file) as conn:
            deadline = time.monotonic() + 30
            while conn.execute("SELECT COUNT(*) FROM hard_samples").fetchone()[0] < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            uploaded = [row[0] for row in conn.execute("SELECT image FROM hard_samples")]
        assert len(uploaded) >= 2
        for jpeg in uploaded:
            masked_area_is_black(jpeg)
        for stored in (tmp_path / "data" / "samples").glob("*.jpg"):
            masked_area_is_black(stored.read_bytes())
    finally:
        agent.stop()
        worker.join(timeout=30)
        agent.shutdown(2)
        server.stop()


def test_an_ignore_zone_hides_items_from_the_detector_and_a_mask_does_not(scene: tuple[Path, Path], tmp_path: Path) -> None:
    model, video = scene
    cover = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    line = [{"name": "belt-1", "points": [0.5, 1.0, 0.5, 0.0]}]
    masked = Agent(
        load_agent_config(write_config(tmp_path, video, model, count={"lines": line, "masks": [{"name": "all", "polygon": cover}]}))
    )
    assert sum(masked.run().counts["in"].values()) == len(ITEMS)
    masked.shutdown(0)
    ignored = tmp_path / "ignored"
    ignored.mkdir()
    agent = Agent(
        load_agent_config(write_config(ignored, video, model, count={"lines": line, "ignore": [{"name": "all", "polygon": cover}]}))
    )
    assert sum(agent.run().counts["in"].values()) == 0
    agent.shutdown(0)
