"""Model lifecycle with real processes: registry → assignment → over-the-air swap on the device; bad models
refused while the old one keeps counting; hard samples from the device to a YOLO dataset on disk."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from blob_model import NAMES, write_blob_model, write_blob_video
from system_helpers import ServerProcess, farz_out, start_agent

pytestmark = pytest.mark.slow


@pytest.fixture
def site(tmp_path: Path) -> dict[str, object]:
    db_file = tmp_path / "farz.db"
    db = f"sqlite:///{db_file}"
    farz_out("server", "admin", "create-site", "site-a", "--name", "Site A", "--tz", "Africa/Casablanca", "--database-url", db)
    device = farz_out("server", "admin", "create-device", "cam-1", "--site", "site-a", "--database-url", db)
    scientist = farz_out("server", "admin", "create-token", "--role", "scientist", "--database-url", db)
    (tmp_path / "scientist.token").write_text(scientist)
    video = tmp_path / "belt.avi"
    write_blob_video(video, ["red", "blue"] * 12)
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"device_id: cam-1\nsource: {video}\nmodel_check_interval_s: 0.3\nupload_interval_s: 0.2\nlive_view: {{enabled: false}}\n"
        "hard_samples: {min_interval_s: 0.2}\n"
    )
    return {"db": db, "db_file": db_file, "device": device, "scientist": scientist, "video": video, "config": config, "tmp": tmp_path}


def agent_on(site: dict[str, object], model: Path, server: ServerProcess, *flags: str) -> subprocess.Popen[str]:
    """The site's device agent on its video with ``model``, configured by the site's agent.yaml."""
    tmp = Path(str(site["tmp"]))
    return start_agent(
        Path(str(site["video"])), model, server.url, "cam-1", str(site["device"]), tmp / "data", "--config", str(site["config"]), *flags
    )


def models_in_events(db_file: Path) -> list[str]:
    with sqlite3.connect(db_file) as conn:
        return [r[0] for r in conn.execute("SELECT model FROM events ORDER BY id")]


def wait_for(predicate: object, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_a_registered_model_reaches_the_assigned_device_and_counts_its_next_events(site: dict[str, object]) -> None:
    tmp = Path(str(site["tmp"]))
    old, new = write_blob_model(tmp / "v1.onnx", name="blob-v1"), write_blob_model(tmp / "v2.onnx", name="blob-v2")
    server = ServerProcess(str(site["db"]), port=None).start()
    try:
        agent = agent_on(site, old, server, "--realtime", "--loop")
        assert wait_for(lambda: len(models_in_events(Path(str(site["db_file"])))) >= 2)
        record = json.loads(farz_out("train", "register", str(new), "--server", server.url, "--token-file", str(tmp / "scientist.token")))
        assert record["sha256"] == hashlib.sha256(new.read_bytes()).hexdigest()
        farz_out("server", "admin", "assign-model", "--model", str(record["id"]), "--device", "cam-1", "--database-url", str(site["db"]))
        assert wait_for(lambda: models_in_events(Path(str(site["db_file"])))[-1].startswith("blob-v2@"), 40), "the new model never counted"
        seen = models_in_events(Path(str(site["db_file"])))
        first_new = next(i for i, m in enumerate(seen) if m.startswith("blob-v2@"))
        assert all(m.startswith("blob-v1@") for m in seen[:first_new]) and all(m.startswith("blob-v2@") for m in seen[first_new:])
        agent.terminate()
        agent.wait(timeout=30)
        assert (tmp / "data" / "models" / "previous-detector.txt").read_text().strip() == hashlib.sha256(old.read_bytes()).hexdigest()
    finally:
        server.stop()


def test_a_classifier_is_assigned_swapped_and_rolled_back_on_its_own(site: dict[str, object]) -> None:
    from colour_classifier import write_colour_classifier

    tmp = Path(str(site["tmp"]))
    detector = write_blob_model(tmp / "v1.onnx", name="blob-v1")
    first = write_colour_classifier(tmp / "v1.colour.onnx", name="colour-v1")  # the classifier the agent starts with
    second = write_colour_classifier(tmp / "c2.onnx", name="colour-v2", sharpness=0.04)
    server = ServerProcess(str(site["db"])).start()
    db_file = Path(str(site["db_file"]))
    try:
        agent = agent_on(site, detector, server, "--realtime", "--loop")
        assert wait_for(lambda: len(models_in_events(db_file)) >= 2)
        token = str(tmp / "scientist.token")
        for model in (first, second):
            record = json.loads(farz_out("train", "register", str(model), "--server", server.url, "--token-file", token))
            farz_out(
                "server", "admin", "assign-model", "--model", str(record["id"]), "--device", "cam-1", "--database-url", str(site["db"])
            )
        if not wait_for(lambda: "+colour-v2@" in models_in_events(db_file)[-1], 40):
            agent.terminate()
            pytest.fail(f"the new classifier never counted: {models_in_events(db_file)[-1]}; {agent.communicate(timeout=30)[1][-3000:]}")
        assert all(m.startswith("blob-v1@") for m in models_in_events(db_file))  # the detector stayed
        farz_out("server", "admin", "rollback-model", "--classifier", "--device", "cam-1", "--database-url", str(site["db"]))
        assert wait_for(lambda: "+colour-v1@" in models_in_events(db_file)[-1], 40), "the classifier was not rolled back"
        assert all(m.startswith("blob-v1@") for m in models_in_events(db_file))
        agent.terminate()
        agent.wait(timeout=30)
    finally:
        server.stop()


def post_model(server: ServerProcess, token: str, data: bytes, card: dict[str, object]) -> int:
    header = base64.b64encode(json.dumps(card).encode()).decode()
    request = urllib.request.Request(
        server.url + "/api/v1/models",
        data=data,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream", "X-Farz-Model-Card": header},
    )
    return int(json.loads(urllib.request.urlopen(request).read())["id"])


@pytest.mark.parametrize("kind", ["corrupt", "wrong-classes"])
def test_a_bad_model_is_refused_and_the_old_one_keeps_counting(site: dict[str, object], kind: str) -> None:
    tmp = Path(str(site["tmp"]))
    old = write_blob_model(tmp / "v1.onnx", name="blob-v1")
    if kind == "corrupt":
        data = old.read_bytes()[:-200] + b"\x00" * 200
    else:
        swapped = (NAMES[1], NAMES[0], *NAMES[2:])
        data = write_blob_model(tmp / "bad.onnx", name="blob-bad", names=swapped).read_bytes()
    card = {"name": f"blob-{kind}", "sha256": hashlib.sha256(data).hexdigest(), "classes": list(NAMES), "imgsz": [64, 64]}
    server = ServerProcess(str(site["db"])).start()
    try:
        agent = agent_on(site, old, server, "--realtime", "--loop")
        assert wait_for(lambda: len(models_in_events(Path(str(site["db_file"])))) >= 1)
        model_id = post_model(server, str(site["scientist"]), data, card)
        farz_out("server", "admin", "assign-model", "--model", str(model_id), "--device", "cam-1", "--database-url", str(site["db"]))
        before = len(models_in_events(Path(str(site["db_file"]))))
        assert wait_for(lambda: len(models_in_events(Path(str(site["db_file"])))) >= before + 4, 40), "counting stopped"
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        assert "refused" in err
        assert all(m.startswith("blob-v1@") for m in models_in_events(Path(str(site["db_file"]))))
    finally:
        server.stop()


def test_hard_samples_round_trip_to_a_yolo_dataset_that_prepare_accepts(site: dict[str, object]) -> None:
    tmp = Path(str(site["tmp"]))
    unsure = write_blob_model(tmp / "unsure.onnx", name="blob-unsure", score=0.4)  # every detection in the uncertain band
    server = ServerProcess(str(site["db"])).start()
    try:
        agent = agent_on(site, unsure, server, "--once", "--json")
        _, err = agent.communicate(timeout=120)
        assert agent.returncode == 0, err[-1000:]
        with sqlite3.connect(Path(str(site["db_file"]))) as conn:
            assert wait_for(lambda: conn.execute("SELECT COUNT(*) FROM hard_samples").fetchone()[0] >= 2, 20)
        out_dir = tmp / "pulled"
        farz_out(
            "train",
            "pull-samples",
            "--site",
            "site-a",
            "--out",
            str(out_dir),
            "--server",
            server.url,
            "--token-file",
            str(tmp / "scientist.token"),
        )
        images = sorted((out_dir / "images" / "train").glob("*.jpg"))
        labels = [(out_dir / "labels" / "train" / f"{p.stem}.txt").read_text().split() for p in images]
        assert len(images) >= 2 and all(row and row[0] in ("0", "1") for row in labels)
        prepared = subprocess.run(
            [sys.executable, "-m", "farz", "train", "prepare", str(out_dir), "--out", str(tmp / "prepared"), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(prepared.stdout)
        assert sum(report["images"].values()) == len(images)
    finally:
        server.stop()
