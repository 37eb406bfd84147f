"""The agent against a real, current Home Assistant (``../shared/ha-current``), not in CI.

Usage (from the project folder, after ``../shared/ha-current/setup.sh`` once):

    .venv/bin/python -m scripts.ha_check [--port 18830] [--keep]

Starts Home Assistant 2026.x with its own Mosquitto on loopback (``run.sh PORT``), runs
``scene-agent run`` against it with a loopback MJPEG camera, and checks, printing each
result: every entity appears on one device with the ids the README names; the scene
changed, tamper and reference sensors follow what the camera shows (a change, then a
covered lens); the event entity fires ``tamper_started``; Home Assistant's log has no
warning or error about our messages. Exit code 0 when every check passed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scene_agent.demo import DemoRenderer, DemoScene, Thing
from tests.mjpeg import MjpegCamera

ROOT = Path(__file__).resolve().parents[1]
HA = ROOT.parent / "shared" / "ha-current"
CAMERA = "hacheck"
CLEAN = DemoRenderer(DemoScene(frames=1, drift=0.0)).frame(0)
CHANGED = DemoRenderer(
    DemoScene(frames=1, drift=0.0, things=(Thing(0, None, (160, 140), (20, 20, 20), (80.0, 90.0)),))
).frame(0)
COVERED = np.full_like(CLEAN, 12)
EXPECTED = {
    "binary_sensor.ha_check_scene_changed": "problem",
    "binary_sensor.ha_check_tamper": "tamper",
    "binary_sensor.ha_check_camera": "connectivity",
    "sensor.ha_check_reference_in_use": None,
    "event.ha_check_scene_change": None,
    "switch.ha_check_monitoring": None,
}


def harness(port: int) -> Any:
    sys.path.insert(0, str(HA / "lib"))
    from harness import Harness  # type: ignore[import-not-found]  # noqa: PLC0415

    return Harness.from_port(port)


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, what: str, ok: object) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
        self.failed += 0 if ok else 1


def wait(pred: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18830)
    parser.add_argument("--keep", action="store_true", help="leave Home Assistant running")
    parser.add_argument(
        "--run-script",
        type=Path,
        default=HA / "run.sh",
        help="the harness's run.sh, or a copy that starts another Home Assistant release",
    )
    args = parser.parse_args(argv)
    subprocess.run([str(args.run_script), str(args.port)], check=True)
    ha = harness(args.port)
    camera = MjpegCamera(CLEAN)
    camera.start()
    checks = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "SCENE_AGENT_MQTT__HOST": "127.0.0.1",
            "SCENE_AGENT_MQTT__PORT": str(args.port),
            "SCENE_AGENT_CAMERA__ID": CAMERA,
            "SCENE_AGENT_CAMERA__NAME": "HA check",
            "SCENE_AGENT_CAMERA__SOURCE": camera.url,
            "SCENE_AGENT_STORAGE__DATA_DIR": str(Path(tmp) / "data"),
            "SCENE_AGENT_DETECTOR__EVENT_GAP_S": "1",
        }
        log = Path(tmp) / "agent.log"
        with log.open("w") as out:
            agent = subprocess.Popen(
                [sys.executable, "-m", "scene_agent", "run"], env=env, stdout=out, stderr=out
            )
        try:
            run_checks(ha, camera, checks)
        finally:
            agent.terminate()
            agent.wait(10)
            camera.stop()
            if not args.keep:
                subprocess.run([str(HA / "stop.sh"), str(args.port)], check=False)
        print("agent log tail:\n" + "".join(log.read_text().splitlines(True)[-8:]))
    print(f"{checks.failed} check(s) failed" if checks.failed else "all checks passed")
    return 1 if checks.failed else 0


def state_of(ha: Any, entity_id: str) -> str | None:
    entity = ha.entity(entity_id)
    return None if entity is None else entity.get("state")


def run_checks(ha: Any, camera: MjpegCamera, checks: Checks) -> None:
    present = ha.wait_for(lambda st: all(e in st["entities"] for e in EXPECTED) and st, timeout=60)
    checks.check("every expected entity appeared", present)
    if not present:
        missing = [e for e in EXPECTED if ha.entity(e) is None]
        print("   missing:", missing, "have:", sorted(ha.mqtt_entities()))
        return
    devices = {(ent.get("device") or {}).get("id") for ent in ha.mqtt_entities().values()}
    checks.check(f"one device ({len(devices)})", len(devices) == 1)
    for entity_id, device_class in EXPECTED.items():
        if device_class is not None:
            got = ha.entity(entity_id)["attributes"].get("device_class")
            checks.check(
                f"{entity_id} has device_class {device_class} ({got})", got == device_class
            )
    checks.check(
        "reference sensor says colour",
        wait(lambda: state_of(ha, "sensor.ha_check_reference_in_use") == "colour", 30),
    )
    checks.check(
        "tamper off at first",
        wait(lambda: state_of(ha, "binary_sensor.ha_check_tamper") == "off", 30),
    )
    camera.show(CHANGED)
    checks.check(
        "scene changed turns on",
        wait(lambda: state_of(ha, "binary_sensor.ha_check_scene_changed") == "on", 30),
    )
    camera.show(CLEAN)
    checks.check(
        "scene changed turns off again",
        wait(lambda: state_of(ha, "binary_sensor.ha_check_scene_changed") == "off", 30),
    )
    camera.show(COVERED)
    checks.check(
        "covering the lens turns tamper on",
        wait(lambda: state_of(ha, "binary_sensor.ha_check_tamper") == "on", 30),
    )
    event = ha.entity("event.ha_check_scene_change")
    checks.check(
        "the event entity fired tamper_started",
        wait(
            lambda: (
                (ha.entity("event.ha_check_scene_change") or {})
                .get("attributes", {})
                .get("event_type")
                == "tamper_started"
            ),
            15,
        ),
    )
    checks.check(
        "no change episode while tampered",
        state_of(ha, "binary_sensor.ha_check_scene_changed") == "off",
    )
    camera.show(CLEAN)
    checks.check(
        "uncovering turns tamper off",
        wait(lambda: state_of(ha, "binary_sensor.ha_check_tamper") == "off", 30),
    )
    del event
    log_text = Path(ha.env["HARNESS_HA_LOG"]).read_text(errors="replace")
    ours = [
        line
        for line in log_text.splitlines()
        if ("WARNING" in line or "ERROR" in line)
        and ("mqtt" in line.lower() or "scene_agent" in line or CAMERA in line)
    ]
    checks.check(f"no warning or error about our messages ({len(ours)})", not ours)
    for line in ours[:10]:
        print("   ", line[:300])


if __name__ == "__main__":
    sys.exit(main())
