"""The device live view and its setup editor in real headless Chromium, against a real `farz device run`:
the view without and with a token; drag the count line's ends, watch the dry run, save, and the agent
counts with the new line; draw a privacy mask and read the stream's pixels in the browser."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from blob_model import blob_classifier, write_blob_model, write_blob_video
from browser import chrome, needs_chromium, screenshot
from masks import masked_area_is_black, pattern
from system_helpers import free_port

pytestmark = [pytest.mark.browser, needs_chromium]
TOKEN = "farzlv_browser-test-installer-token"
SIZE = (320, 240)


@pytest.fixture
def device(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`farz device run --config agent.yaml --loop` on a belt of squares over a patterned background."""
    model = write_blob_model(tmp_path / "blob.onnx")
    video = tmp_path / "belt.avi"
    write_blob_video(video, ["red", "blue"] * 3, size=SIZE, step=16, background=pattern(SIZE))
    (tmp_path / "lv.token").write_text(TOKEN + "\n")
    port = free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "device_id": "cam-1",
                "source": str(video),
                "model": str(model),
                "classifier": str(blob_classifier(model)),
                "data_dir": str(tmp_path / "data"),
                "realtime": True,
                "hard_samples": {"enabled": False},
                "live_view": {"host": "127.0.0.1", "port": port, "token_file": str(tmp_path / "lv.token"), "max_fps": 10},
                "count": {"lines": [{"name": "belt-1", "points": [0.5, 1.0, 0.5, 0.0]}]},
            },
            sort_keys=False,
        )
    )
    log = (tmp_path / "agent.log").open("w")
    agent = subprocess.Popen([sys.executable, "-m", "farz", "device", "run", "--config", str(config), "--loop"], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield {"base": base, "config": config, "video": video, "model": model, "tmp": tmp_path}
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        log.close()


def status(base: str) -> dict[str, Any]:
    request = urllib.request.Request(base + "/api/status", headers={"Authorization": f"Bearer {TOKEN}"})
    return json.loads(urllib.request.urlopen(request, timeout=5).read())  # type: ignore[no-any-return]


def wait(predicate: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def js(driver: Any, script: str, *args: object) -> Any:
    return driver.execute_script(script, *args)


def pointer_drag(driver: Any, canvas: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at ``start``, move and release at ``end`` (0-1 coordinates of the canvas), through real pointer events."""
    from selenium.webdriver.common.action_chains import ActionChains

    w, h = js(driver, "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", canvas)
    at = lambda p: (round(p[0] * w - w / 2), round(p[1] * h - h / 2))  # noqa: E731 offsets from the centre
    chain = ActionChains(driver).move_to_element_with_offset(canvas, *at(start)).click_and_hold()
    for k in range(1, 6):
        step = (start[0] + (end[0] - start[0]) * k / 5, start[1] + (end[1] - start[1]) * k / 5)
        chain = chain.move_to_element_with_offset(canvas, *at(step))
    chain.release().perform()


def tap(driver: Any, canvas: Any, point: tuple[float, float]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    w, h = js(driver, "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", canvas)
    ActionChains(driver).move_to_element_with_offset(canvas, round(point[0] * w - w / 2), round(point[1] * h - h / 2)).click().perform()


STREAM_PIXELS = """
const img = document.getElementById('stream');
if (!img.naturalWidth) return null;
const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
return [c.width, c.height, Array.from(g.getImageData(0, 0, c.width, c.height).data)];
"""


def stream_image(driver: Any) -> np.ndarray | None:
    """The stream's current picture as the browser shows it, (H, W, 3) RGB."""
    got = js(driver, STREAM_PIXELS)
    if got is None:
        return None
    w, h, data = got
    return np.asarray(data, np.uint8).reshape(h, w, 4)[:, :, :3]


def test_live_view_without_and_with_a_token(device: dict[str, Any], tmp_path: Path) -> None:
    driver = chrome(tmp_path / "chrome")
    try:
        driver.get(device["base"] + "/")
        assert "needs a token" in driver.find_element("id", "reason").text
        assert driver.find_elements("id", "stream") == []
        driver.get(device["base"] + "/api/status")
        assert "needs a token" in driver.page_source
        driver.get(device["base"] + f"/?token={TOKEN}")
        assert TOKEN not in driver.current_url  # moved to an HttpOnly cookie
        assert js(driver, "return document.cookie") == ""
        assert wait(lambda: stream_image(driver) is not None), "the stream never showed"
        assert wait(lambda: "cardboard" in driver.find_element("id", "totals").text or "glass" in driver.find_element("id", "totals").text)
        assert wait(lambda: driver.find_element("id", "setup-link").is_displayed())  # an installer's token
        screenshot(driver, "liveview-phone")
    finally:
        driver.quit()


def test_set_the_line_in_the_browser_dry_run_save_and_mask(device: dict[str, Any], tmp_path: Path) -> None:
    base = device["base"]
    driver = chrome(tmp_path / "chrome")
    try:
        driver.get(base + f"/setup?token={TOKEN}")
        assert wait(lambda: js(driver, "return !!(window.farzSetup && window.farzSetup.edit)"))
        canvas = driver.find_element("id", "editor")
        js(driver, "arguments[0].scrollIntoView({block: 'center'})", canvas)
        assert wait(lambda: js(driver, "return arguments[0].getBoundingClientRect().height", canvas) > 100), "the picture never showed"
        screenshot(driver, "setup-phone-before")
        # Turn the line round by dragging its ends: items moving left to right now count `out`.
        pointer_drag(driver, canvas, (0.5, 0.015), (0.55, 0.97))
        pointer_drag(driver, canvas, (0.5, 0.985), (0.45, 0.03))
        x1, y1, x2, y2 = js(driver, "return window.farzSetup.edit.lines[0].points")
        assert abs(x1 - 0.45) < 0.02 and abs(y1 - 0.03) < 0.02 and abs(x2 - 0.55) < 0.02 and abs(y2 - 0.97) < 0.02
        saved_in = sum(status(base)["counts"]["in"].values())
        driver.find_element("id", "dry-run").click()
        dry_counted = lambda: int(driver.find_element("id", "dry-state").get_attribute("data-counted") or 0)  # noqa: E731
        assert wait(lambda: dry_counted() >= 2, 30), "the dry run counted nothing"
        directions = {row.text.split()[-1] for row in driver.find_elements("css selector", "#dry-events tr")}
        assert directions == {"out"}, directions
        assert sum(status(base)["counts"]["out"].values()) == 0  # a dry run counts nothing for real
        assert sum(status(base)["counts"]["in"].values()) > saved_in  # ... while the saved line goes on counting
        screenshot(driver, "setup-phone-dry-run")
        driver.find_element("id", "save").click()
        assert wait(lambda: "saved to" in driver.find_element("id", "message").text), driver.find_element("id", "error").text
        points = yaml.safe_load(device["config"].read_text())["count"]["lines"][0]["points"]
        assert abs(points[0] - 0.45) < 0.02 and abs(points[3] - 0.97) < 0.02
        assert wait(lambda: sum(status(base)["counts"]["out"].values()) >= 2, 30), "the agent did not count with the saved line"
        # A privacy mask over the bottom-left corner: the stream's pixels there turn black.
        driver.find_element("id", "draw-mask").click()
        for corner in ((0.0, 0.62), (0.38, 0.62), (0.38, 1.0), (0.0, 1.0)):
            tap(driver, canvas, (min(max(corner[0], 0.003), 0.997), min(max(corner[1], 0.003), 0.997)))
        driver.find_element("id", "finish").click()
        driver.find_element("id", "save").click()
        assert wait(lambda: "saved to" in driver.find_element("id", "message").text and "mask" in device["config"].read_text())

        def masked() -> bool:
            image = stream_image(driver)
            try:
                masked_area_is_black(image)  # type: ignore[arg-type]
                return True
            except AssertionError:
                return False

        assert wait(masked, 15), "the stream still shows pixels inside the mask"
        screenshot(driver, "setup-phone-masked")
        driver.set_window_size(1280, 900)
        time.sleep(0.5)
        screenshot(driver, "setup-desktop")
    finally:
        driver.quit()
    # `farz count` reads the file the browser saved: the same video now counts `out`.
    counted = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "farz",
                "count",
                str(device["video"]),
                "--model",
                str(device["model"]),
                "--classifier",
                str(blob_classifier(device["model"])),
                "--config",
                str(device["config"]),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert counted["counts"]["in"] == {} and sum(counted["counts"]["out"].values()) == 6
