"""The staff dashboard in headless Chromium (Debian's package): an ingested event shows within 1 s, the composition chart
draws it, a breach turns a line red, and the shift report page shows the numbers the dashboard and the API show."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from browser import chrome, needs_chromium, screenshot

from server.zones import site_zone

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def farz(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "farz", *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A real `farz server run` on loopback; yields (base URL, viewer token, device token)."""
    db = f"sqlite:///{tmp_path / 'farz.db'}"
    farz("server", "admin", "create-site", "berkane-c1", "--name", "Berkane C1", "--tz", "Africa/Casablanca", "--database-url", db)
    device = farz("server", "admin", "create-device", "cam-1", "--site", "berkane-c1", "--database-url", db)
    viewer = farz("server", "admin", "create-token", "--role", "viewer", "--database-url", db)
    target = ["--site", "berkane-c1", "--line", "belt-1", "--min", "glass=0.5", "--min-items", "2"]
    farz("server", "admin", "set-target", *target, "--database-url", db)
    farz(
        "server", "admin", "set-shift", "--site", "berkane-c1", "--name", "day", "--start", "00:00", "--end", "00:00", "--database-url", db
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "farz", "server", "run", "--port", str(port), "--database-url", db],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield base, viewer, device
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def post_event(base: str, device_token: str, cls: str) -> None:
    body = {
        "device_id": "cam-1",
        "events": [
            {
                "event_id": str(uuid.uuid4()),
                "ts": datetime.now(UTC).isoformat(),
                "device_id": "cam-1",
                "line": "belt-1",
                "class": cls,
                "direction": "in",
                "track_id": 1,
                "confidence": 0.9,
                "model": "m",
            }
        ],
    }
    request = urllib.request.Request(
        base + "/api/v1/ingest",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {device_token}"},
    )
    assert json.loads(urllib.request.urlopen(request).read())["accepted"] == 1


def away_from_site_midnight(tz: str = "Africa/Casablanca") -> None:
    """Wait until the site's clock is not in its day's last two minutes: a test that labels "today" must post its
    counts and its label on the same site day (the dashboard's forms follow the site's clock, not the browser's)."""

    now = datetime.now(site_zone(tz))
    if now.hour == 23 and now.minute >= 58:
        time.sleep(60 * (60 - now.minute) - now.second + 5)


def browser_far_from_the_site(driver: Any) -> None:
    """The browser's clock in Tokyo (8 or 9 hours from the site's): every time the page shows must still be the
    site's wall clock."""
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})


def page_text(driver: Any, selector: str) -> str:
    """Read in one script call: the page replaces rows while it updates (no stale elements)."""
    return str(driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.textContent : '';", selector))


@needs_chromium
def test_a_count_shows_on_the_dashboard_within_one_second(server: tuple[str, str, str], tmp_path: Path) -> None:
    base, viewer, device = server
    driver = chrome(tmp_path / "chrome")
    try:
        browser_far_from_the_site(driver)
        driver.get(f"{base}/#token={viewer}")

        def text(selector: str) -> str:
            return page_text(driver, selector)

        def attribute(selector: str, name: str) -> str:
            script = "const e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);"
            return str(driver.execute_script(script, selector, name))

        def cell() -> str:
            return text('#class-table tr[data-class="glass"] .count-in')

        deadline = time.monotonic() + 15
        while "updated" not in text("#live-state") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cell() == ""
        start = time.monotonic()
        post_event(base, device, "glass")
        while cell() != "1" and time.monotonic() - start < 5:
            time.sleep(0.02)
        elapsed = time.monotonic() - start
        assert cell() == "1", "the count never showed"
        assert elapsed <= 1.0, f"the count showed after {elapsed:.2f} s"
        post_event(base, device, "glass")
        start = time.monotonic()
        while cell() != "2" and time.monotonic() - start < 5:
            time.sleep(0.02)
        assert time.monotonic() - start <= 1.0
        assert text("#total-today") == "2"
        deadline = time.monotonic() + 10
        while "cam-1" not in text("#device-table") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "cam-1" in text("#device-table")
        post_event(base, device, "plastic")
        deadline = time.monotonic() + 10
        while attribute("#composition", "data-items") != "3" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert attribute("#composition", "data-items") == "3", "the composition chart never drew the counts"
        assert attribute("#composition", "data-buckets") == "1" and text("#comp-legend") == "glassplastic"
        assert attribute("#composition", "data-ticks").startswith("00:00 "), "the axis starts at the site's midnight"
        screenshot(driver, "dashboard-desktop")
        driver.set_window_size(390, 844)
        driver.execute_script("document.getElementById('composition').scrollIntoView()")
        screenshot(driver, "dashboard-phone")
    finally:
        driver.quit()


@needs_chromium
def test_a_purity_breach_turns_the_line_red_within_two_seconds_and_recovery_green(server: tuple[str, str, str], tmp_path: Path) -> None:
    base, viewer, device = server
    away_from_site_midnight()
    driver = chrome(tmp_path / "chrome")
    try:
        browser_far_from_the_site(driver)
        driver.get(f"{base}/#token={viewer}")

        def line_state() -> str:
            script = "const e = document.querySelector('#line-table tr[data-line=\"belt-1\"]'); return e ? e.dataset.lineState : '';"
            return str(driver.execute_script(script))

        def wait_for(state: str, within_s: float) -> float:
            start = time.monotonic()
            while line_state() != state and time.monotonic() - start < max(within_s, 10):
                time.sleep(0.02)
            elapsed = time.monotonic() - start
            assert line_state() == state, f"the line never turned {state}"
            assert elapsed <= within_s, f"the line turned {state} after {elapsed:.2f} s"
            return elapsed

        post_event(base, device, "glass")
        wait_for("not_judged", 10)  # one item: below the target's two
        post_event(base, device, "glass")
        wait_for("ok", 2)
        for _ in range(3):
            post_event(base, device, "plastic")  # 2 glass of 5: 40 % < 50 %
        wait_for("breach", 2)
        rows = driver.find_elements("css selector", "#alert-table tr.open-alert")
        assert len(rows) == 1 and "belt-1: glass ≥ 50 % over 15 min" in rows[0].text and "40.0 % of 5" in rows[0].text
        screenshot(driver, "dashboard-breach-desktop")
        driver.set_window_size(390, 844)
        driver.execute_script("document.getElementById('lines-panel').scrollIntoView()")
        screenshot(driver, "dashboard-breach-phone")
        for _ in range(3):
            post_event(base, device, "glass")  # 5 of 8: 62.5 %
        wait_for("ok", 2)
        assert driver.find_elements("css selector", "#alert-table tr.closed-alert")
        assert not driver.find_elements("css selector", "#alert-table tr.open-alert")
        driver.set_window_size(1280, 900)
        add_label_today(driver, "load from supplier A")
        row = wait_for_label(driver, "supplier A")
        assert "load from supplier A" in row and "glass 62.5 %" in row and "plastic 37.5 %" in row, row
        today = datetime.now(site_zone("Africa/Casablanca")).date().isoformat()
        assert f"{today} 00:00 – 23:59" in row, f"the label's times are not the site's clock: {row}"
    finally:
        driver.quit()


def add_label_today(driver: Any, text: str) -> None:
    driver.find_element("id", "label-text").send_keys(text)
    for field, value in (("label-from", "00:00"), ("label-to", "23:59")):
        driver.execute_script("document.getElementById(arguments[0]).value = arguments[1]", field, value)
    driver.find_element("css selector", "#label-form button").click()


def wait_for_label(driver: Any, wanted: str, within_s: float = 10) -> str:
    """The first row of the label table once it shows `wanted`; fails with the form's error if the server refused it."""
    deadline = time.monotonic() + within_s
    while wanted not in page_text(driver, "#label-table") and time.monotonic() < deadline:
        time.sleep(0.05)
    row = page_text(driver, "#label-table tbody tr")
    assert wanted in row, f"label not shown: table {row!r}, form error {page_text(driver, '#label-error')!r}"
    return row


@needs_chromium
def test_an_older_answer_arriving_late_does_not_hide_a_label_just_added(server: tuple[str, str, str], tmp_path: Path) -> None:
    base, viewer, device = server
    away_from_site_midnight()
    post_event(base, device, "glass")
    driver = chrome(tmp_path / "chrome", 1280, 900)
    try:
        driver.get(f"{base}/#token={viewer}")
        wait_for_label(driver, "no labelled periods")
        # The next label list is held back 1.5 s, as a slow network or a busy server would: it was asked before the
        # label was added and answers after the list asked for by adding it.
        driver.execute_script(
            """const real = api; let held = false;
            api = async (path) => {
              const body = await real(path);
              if (path.startsWith("/api/v1/labels") && !held) { held = true; await new Promise((r) => setTimeout(r, 1500)); }
              return body;
            };
            refreshLabels(document.getElementById("site").value);"""
        )
        add_label_today(driver, "night shift")
        wait_for_label(driver, "night shift")
        time.sleep(2.5)  # the held answer (no labels) has arrived by now
        row = page_text(driver, "#label-table tbody tr")
        assert "night shift" in row, f"an older answer replaced the label table: {row!r}"
    finally:
        driver.quit()


def get_json(base: str, path: str, token: str) -> Any:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    return json.loads(urllib.request.urlopen(request).read())


@needs_chromium
def test_the_shift_report_page_shows_what_the_dashboard_and_the_api_show(server: tuple[str, str, str], tmp_path: Path) -> None:
    base, viewer, device = server
    for cls in ("plastic", "plastic", "plastic", "glass", "glass"):
        post_event(base, device, cls)
    today = datetime.now(site_zone("Africa/Casablanca")).date().isoformat()
    driver = chrome(tmp_path / "chrome", 1280, 900)
    try:
        driver.get(f"{base}/#token={viewer}")

        def wait_text(selector: str, wanted: str) -> None:
            deadline = time.monotonic() + 15
            while page_text(driver, selector) != wanted and time.monotonic() < deadline:
                time.sleep(0.05)
            assert page_text(driver, selector) == wanted, (selector, page_text(driver, selector))

        wait_text("#total-today", "5")
        dashboard = {c: int(page_text(driver, f'#class-table tr[data-class="{c}"] .count-in')) for c in ("glass", "plastic")}
        driver.execute_script("document.getElementById('report-date').value = arguments[0]", today)
        driver.find_element("css selector", "#report-form button").click()
        wait_text("#total-in", "5")
        assert "/reports/shift?" in driver.current_url and "shift=day" in driver.current_url
        report = {c: int(page_text(driver, f'#totals tr[data-class="{c}"] .count-in')) for c in ("glass", "plastic")}
        api = get_json(base, f"/api/v1/reports/shift?site=berkane-c1&date={today}&shift=day", viewer)
        summary = get_json(base, "/api/v1/sites/berkane-c1/summary", viewer)
        assert dashboard == report == api["totals"]["counts"]["in"] == summary["today"]["counts"]["in"] == {"glass": 2, "plastic": 3}
        assert page_text(driver, '#lines section[data-line="belt-1"] tr.all .count-in') == "5"
        purity = page_text(driver, "#purity tbody tr")
        assert "glass ≥ 50 % over 15 min" in purity and "40.0 %" in purity and "MISSED" in purity, purity
        assert page_text(driver, '#devices tr[data-device="cam-1"] .models') == "m"
        assert driver.execute_script("return document.getElementById('hours').dataset.items") == "5"
        driver.set_window_size(1280, 2600)  # the whole page
        screenshot(driver, "shift-report-desktop")
        driver.set_window_size(390, 844)
        screenshot(driver, "shift-report-phone")
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 400  # nothing wider than a phone
    finally:
        driver.quit()


@needs_chromium
def test_the_page_keeps_the_sites_clock_by_the_servers_offsets_not_the_browsers(server: tuple[str, str, str], tmp_path: Path) -> None:
    base, viewer, _ = server
    driver = chrome(tmp_path / "chrome")
    try:
        browser_far_from_the_site(driver)
        driver.get(f"{base}/#token={viewer}")
        deadline = time.monotonic() + 10
        while not driver.execute_script("return zoneOffsets.has('Africa/Casablanca')") and time.monotonic() < deadline:
            time.sleep(0.05)
        late = int(datetime(2026, 12, 5, 23, 30, tzinfo=UTC).timestamp() * 1000)
        assert driver.execute_script("return siteClock('Africa/Casablanca', arguments[0])", late) == "2026-12-05 23:30"
        # A zone the browser has no rules for: the server's table alone gives every wall-clock time and instant.
        driver.execute_script("zoneOffsets.set('Test/Ninety_East', [[0, 90]])")
        assert driver.execute_script("return siteClock('Test/Ninety_East', arguments[0])", late) == "2026-12-06 01:00"
        assert driver.execute_script("return siteDate('Test/Ninety_East', arguments[0])", late) == "2026-12-06"
        assert driver.execute_script("return siteInstant('Test/Ninety_East', '2026-12-06', '00:30')") == "2026-12-05T23:00:00.000Z"
        assert driver.execute_script("return siteWeekday('Test/Ninety_East', arguments[0])", late) == "Sun"
    finally:
        driver.quit()
