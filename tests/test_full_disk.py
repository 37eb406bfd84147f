"""A full disk, for real: the agent's data directory on a small tmpfs that the test fills.

Needs root (to mount the tmpfs), as CI runs; elsewhere the test is skipped and says so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scene_agent.demo import DemoRenderer, DemoScene, Thing
from tests.mjpeg import MjpegCamera
from tests.mqtt_helpers import AgentProcess, Broker, Recorder, wait_for

CLEAN = DemoRenderer(DemoScene(frames=1, drift=0.0)).frame(0)
CHANGED = DemoRenderer(
    DemoScene(frames=1, drift=0.0, things=(Thing(0, None, (200, 160), (20, 20, 20), (80.0, 90.0)),))
).frame(0)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the disk is full."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 16384)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_full_disk_keeps_the_agent_alive_answering_and_publishing(
    small_disk: Path, tmp_path: Path
) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    camera = MjpegCamera(CLEAN)
    camera.start()
    cam = f"disk{uuid.uuid4().hex[:6]}"
    data = small_disk / "data"
    agent = AgentProcess(
        tmp_path,
        {
            "SCENE_AGENT_MQTT__HOST": "127.0.0.1",
            "SCENE_AGENT_MQTT__PORT": str(broker.port),
            "SCENE_AGENT_MQTT__STATE_INTERVAL_S": "1",
            "SCENE_AGENT_CAMERA__ID": cam,
            "SCENE_AGENT_CAMERA__SOURCE": camera.url,
            "SCENE_AGENT_CAMERA__FPS": "10",
            "SCENE_AGENT_STORAGE__DATA_DIR": str(data),
            "SCENE_AGENT_DETECTOR__EVENT_GAP_S": "0.5",
            "SCENE_AGENT_DETECTOR__LEARN_S": "0.5",
        },
    )
    rec = Recorder(broker.port, f"scene_agent/{cam}")
    agent.start()
    filler = None
    try:
        rec.wait("availability", lambda m: m.payload == b"online", timeout=20)
        rec.wait("state", lambda m: json.loads(m.payload)["references"] == ["colour"], timeout=20)
        filler = fill(small_disk)

        # Full: a change is still published, flagged as not stored, start and end.
        since = rec.mark()
        camera.show(CHANGED)
        start = rec.wait_new("events", lambda m: m.json()["type"] == "start", since=since)
        assert start.json()["stored"] is False and start.json()["image"] is None
        camera.show(CLEAN)
        end = rec.wait_new("events", lambda m: m.json()["type"] == "end", since=since)
        assert end.json()["stored"] is False
        # Still answering, still online, and said so once in the log.
        assert rec.command("cmd/list")["ok"] is True
        assert rec.command("threshold/set", "11")["ok"] is True
        assert rec.retained(broker.port, "availability") == b"online"
        assert agent.alive()
        log = agent.log()
        assert log.count("storage is failing") == 1, log[-3000:]
        assert "Traceback" not in log

        # A restart on the full disk comes up and answers too.
        assert agent.stop() == 0
        since = rec.mark()
        agent.start()
        rec.wait_new("availability", lambda m: m.payload == b"online", since=since, timeout=20)
        assert rec.command("cmd/list")["ok"] is True
        assert agent.alive()

        # Space again: the next change is stored, by itself.
        filler.unlink()
        camera.show(CLEAN)
        rec.wait("state", lambda m: json.loads(m.payload)["learning"] is False, timeout=20)
        since = rec.mark()
        camera.show(CHANGED)
        stored = rec.wait_new("events", lambda m: m.json()["type"] == "start", since=since)
        assert "stored" not in stored.json()
        assert (data / stored.json()["image"]).exists()
        assert wait_for(lambda: "storage works again" in agent.log(), 10)
    finally:
        agent.stop()
        camera.stop()
        rec.close()
        broker.stop()
        if filler is not None:
            with contextlib.suppress(FileNotFoundError):
                filler.unlink()
