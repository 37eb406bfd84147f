"""The web page in a real headless Chromium, against the real agent, camera and broker."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from scene_agent.demo import DemoRenderer, DemoScene, Thing
from tests.mjpeg import MjpegCamera
from tests.mqtt_helpers import AgentProcess, Broker, Recorder, free_port, port_open, wait_for

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CLEAN = DemoRenderer(DemoScene(frames=1, drift=0.0)).frame(0)
CHANGED = DemoRenderer(
    DemoScene(
        frames=1, drift=0.0, things=(Thing(0, None, (220, 180), (250, 250, 250), (60.0, 60.0)),)
    )
).frame(0)

COVERED = np.full_like(CLEAN, 12)

# Pixels of the sparkline drawn in the score's blue and the threshold's red.
SPARK_COLOURS = """() => {
  const c = document.getElementById('spark');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let blue = 0, red = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] < 128) continue;
    if (d[i + 2] > 150 && d[i] < 80) blue++;
    if (d[i] > 150 && d[i + 2] < 80) red++;
  }
  return [blue, red];
}"""

# Mean brightness of the top-left region of the live view, as the browser shows it.
LIVE_BRIGHTNESS = """() => {
  const img = document.getElementById('live');
  if (!img.naturalWidth) return -1;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const d = g.getImageData(80, 80, 150, 120).data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
  return sum / (d.length / 4) / 3;
}"""


BASELINE_SHOWN = "() => document.getElementById('baseline').naturalWidth > 0"


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("Chromium is missing: apt-get install chromium (.ci/run installs it)")
    return path


@pytest.fixture
def page() -> Iterator[tuple[Page, list[str]]]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        tab = browser.new_page(viewport={"width": 1200, "height": 1000})
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        yield tab, errors
        browser.close()


def test_page_in_chromium_drives_the_agent(tmp_path: Path, page: tuple[Page, list[str]]) -> None:
    tab, errors = page
    broker = Broker(tmp_path / "broker")
    broker.start()
    camera = MjpegCamera(CLEAN)
    camera.start()
    cam = f"web{uuid.uuid4().hex[:6]}"
    web_port = free_port()
    agent = AgentProcess(
        tmp_path,
        {
            "SCENE_AGENT_MQTT__HOST": "127.0.0.1",
            "SCENE_AGENT_MQTT__PORT": str(broker.port),
            "SCENE_AGENT_CAMERA__ID": cam,
            "SCENE_AGENT_CAMERA__SOURCE": camera.url,
            "SCENE_AGENT_CAMERA__FPS": "10",
            "SCENE_AGENT_DETECTOR__AUTO_BASELINE": "false",
            "SCENE_AGENT_DETECTOR__EVENT_GAP_S": "1",
            "SCENE_AGENT_STORAGE__DATA_DIR": str(tmp_path / "data"),
            "SCENE_AGENT_WEB__ENABLED": "true",
            "SCENE_AGENT_WEB__PORT": str(web_port),
        },
    )
    rec = Recorder(broker.port, f"scene_agent/{cam}")
    agent.start()
    try:
        assert wait_for(lambda: port_open(web_port), 20), agent.log()[-2000:]
        rec.wait("camera/state", lambda m: m.payload == b"online", timeout=20)
        tab.goto(f"http://127.0.0.1:{web_port}/")
        expect(tab.locator("#camera")).to_have_text("online", timeout=15000)

        # The live view shows the camera and follows it.
        assert wait_for(lambda: 0 <= float(tab.evaluate(LIVE_BRIGHTNESS)) < 200, 15)
        camera.show(CHANGED)
        assert wait_for(lambda: float(tab.evaluate(LIVE_BRIGHTNESS)) > 230, 15)
        camera.show(CLEAN)
        assert wait_for(lambda: float(tab.evaluate(LIVE_BRIGHTNESS)) < 200, 15)

        # Take baseline: the page and MQTT both show it.
        since = rec.mark()
        tab.click("#btn-snapshot")
        reply = rec.wait_new("reply", since=since).json()
        assert reply["command"] == "cmd/snapshot" and reply["ok"] is True
        expect(tab.locator("#baseline-age")).to_contain_text("ago")
        assert wait_for(lambda: tab.evaluate(BASELINE_SHOWN) is True, 10)

        # A change: the event appears in the gallery without a reload.
        camera.show(CHANGED)
        expect(tab.locator("#gallery li")).to_have_count(1, timeout=20000)
        expect(tab.locator("#change")).to_have_text("Scene changed")
        # The sparkline shows the score (blue; a few seconds of it so far, at the right
        # end) and the threshold (red, across).
        assert wait_for(lambda: tab.evaluate(SPARK_COLOURS)[0] > 3, 10), tab.evaluate(SPARK_COLOURS)
        assert tab.evaluate(SPARK_COLOURS)[1] > 300
        camera.show(CLEAN)
        expect(tab.locator("#gallery li")).to_have_count(2, timeout=20000)
        first_id: Any = tab.get_attribute("#gallery li", "data-id")
        assert rec.wait("events", lambda m: m.json()["id"] == first_id, timeout=10)

        # Delete one: it goes from the page, and the reply is on MQTT.
        since = rec.mark()
        tab.click("#gallery li .delete")
        expect(tab.locator("#gallery li")).to_have_count(1)
        reply = rec.wait_new("reply", since=since).json()
        assert reply["command"] == "cmd/delete" and reply["ok"] is True
        assert not list((tmp_path / "data" / "events").rglob(f"{first_id}.jpg"))

        # Stop and start: the monitoring state follows on MQTT.
        since = rec.mark()
        tab.click("#btn-stop")
        rec.wait_new("monitoring/state", lambda m: m.payload == b"OFF", since=since)
        expect(tab.locator("#monitoring")).to_have_text("off")
        since = rec.mark()
        tab.click("#btn-start")
        rec.wait_new("monitoring/state", lambda m: m.payload == b"ON", since=since)

        # A covered lens is tamper: the badge says so, and it ends when uncovered.
        since = rec.mark()
        camera.show(COVERED)
        expect(tab.locator("#change")).to_have_text("Tamper: covered", timeout=15000)
        expect(tab.locator("#tamper")).to_have_text("covered")
        rec.wait_new("tamper/state", lambda m: m.payload == b"ON", since=since)
        camera.show(CLEAN)
        expect(tab.locator("#tamper")).to_have_text("none", timeout=15000)

        tab.evaluate("window.scrollTo(0, 0)")
        tab.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        assert errors == []
    finally:
        agent.stop()
        camera.stop()
        rec.close()
        broker.stop()
