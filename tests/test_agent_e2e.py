"""The agent end to end: a real Mosquitto, the agent as a process, real video and streams."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from scene_agent.demo import DemoRenderer, DemoScene, Thing, write_video
from tests.mjpeg import MjpegCamera
from tests.mqtt_helpers import AgentProcess, Broker, Recorder, free_port, wait_for

PREFIX = "scene_agent"


def agent_env(
    broker: Broker, data: Path, camera_id: str, source: str, **extra: str
) -> dict[str, str]:
    env = {
        "SCENE_AGENT_MQTT__HOST": "127.0.0.1",
        "SCENE_AGENT_MQTT__PORT": str(broker.port),
        "SCENE_AGENT_MQTT__STATE_INTERVAL_S": "1",
        "SCENE_AGENT_CAMERA__ID": camera_id,
        "SCENE_AGENT_CAMERA__SOURCE": source,
        "SCENE_AGENT_CAMERA__FPS": "10",
        "SCENE_AGENT_CAMERA__RETRY_MAX_S": "1",
        "SCENE_AGENT_STORAGE__DATA_DIR": str(data),
        "SCENE_AGENT_DETECTOR__EVENT_GAP_S": "1",
    }
    env.update({f"SCENE_AGENT_{k.upper()}": v for k, v in extra.items()})
    return env


def new_id() -> str:
    return f"cam{uuid.uuid4().hex[:8]}"


@pytest.fixture
def running() -> Iterator[list[AgentProcess]]:
    """Agents started by a test; any still running are stopped and their log shown."""
    agents: list[AgentProcess] = []
    yield agents
    for agent in agents:
        if agent.alive():
            agent.stop(signal.SIGKILL)


def stored_events(data: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(f"file:{data / 'events.db'}?mode=ro", uri=True) as db:
        return [(r[0], r[1]) for r in db.execute("SELECT id, delivered FROM events ORDER BY seq")]


def red_pixels(jpeg: bytes) -> int:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return int(((image[..., 2] > 180) & (image[..., 1] < 80) & (image[..., 0] < 80)).sum())


def test_end_to_end_commands_events_and_restart(
    tmp_path: Path, broker: Broker, running: list[AgentProcess]
) -> None:
    # 10 fps: clean for 8 s, a box from 8 s to 14 s, clean again to 40 s.
    scene = DemoScene(
        frames=400,
        exposure_steps=(),
        things=(Thing(80, 140, (120, 120), (10, 10, 10), (300.0, 150.0)),),
    )
    video = write_video(tmp_path / "scene.avi", scene)
    cam, data = new_id(), tmp_path / "data"
    env = agent_env(
        broker,
        data,
        cam,
        str(video),
        detector__monitoring="false",
        detector__auto_baseline="false",
    )
    agent = AgentProcess(tmp_path, env)
    running.append(agent)
    rec = Recorder(broker.port, f"{PREFIX}/{cam}")
    agent.start()

    rec.wait("availability", lambda m: m.payload == b"online")
    assert rec.retained(broker.port, "availability") == b"online"
    rec.wait("camera/state", lambda m: m.payload == b"online")
    assert rec.wait("monitoring/state").payload == b"OFF"
    state = rec.wait("state").json()
    assert state["baseline"] is None and state["monitoring"] is False

    snap = rec.command("cmd/snapshot")
    assert snap["ok"] is True, snap
    baseline_jpeg = rec.wait("baseline/image").payload
    assert rec.retained(broker.port, "baseline/image") == baseline_jpeg
    baseline_image = cv2.imdecode(np.frombuffer(baseline_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert baseline_image is not None and baseline_image.shape[1] <= 640
    assert rec.command("threshold/set", "10")["ok"] is True
    rec.wait("threshold/state", lambda m: m.payload == b"10")
    assert rec.command("cmd/start", "PRESS")["ok"] is True
    rec.wait("monitoring/state", lambda m: m.payload == b"ON")

    start = rec.wait("events", lambda m: m.json()["type"] == "start", timeout=25).json()
    assert start["event_type"] == "change_started"
    assert start["camera"] == cam
    assert start["threshold"] == 10
    assert start["score"] >= 10
    assert start["boxes"], start
    x, y, w, h = start["boxes"][0]
    assert 280 <= x <= 300 and 130 <= y <= 150 and w >= 120 and h >= 120
    assert (data / start["image"]).is_file()
    rec.wait("change/state", lambda m: m.payload == b"ON")
    image = rec.wait("events/image")
    assert red_pixels(image.payload) > 200  # the box is drawn
    assert rec.retained(broker.port, "events/image") == image.payload

    before_end = rec.mark()
    end = rec.wait("events", lambda m: m.json()["type"] == "end", timeout=25).json()
    assert end["event_type"] == "change_ended"
    assert end["episode"] == start["id"]
    assert end["peak_score"] >= start["score"]
    assert end["duration_s"] > 3
    assert end["started_at"] == start["time"]
    rec.wait_new("change/state", lambda m: m.payload == b"OFF", since=before_end)

    listed = rec.command("cmd/list", '{"limit": 10}')
    assert listed["ok"] is True
    assert [e["id"] for e in listed["events"]] == [end["id"], start["id"]]

    since = rec.mark()
    deleted = rec.command("cmd/delete", json.dumps({"id": start["id"]}))
    assert deleted == {
        "command": "cmd/delete",
        "ok": True,
        "message": "deleted 1 event(s)",
        "deleted": 1,
    }
    assert not (data / start["image"]).exists()
    rec.wait_new("state", lambda m: m.json()["events_stored"] == 1, since=since)
    again = rec.command("cmd/delete", json.dumps({"id": start["id"]}))
    assert again["ok"] is False and "no stored event" in again["message"]
    since = rec.mark()
    assert rec.command("cmd/delete", "all")["deleted"] == 1
    rec.wait_new("state", lambda m: m.json()["events_stored"] == 0, since=since)
    assert (data / "baseline.jpg").is_file()  # never deleted

    # Restart: monitoring (ON, set by command) and threshold (10) come back.
    assert agent.stop() == 0
    assert rec.retained(broker.port, "availability") == b"offline"
    restarted = AgentProcess(tmp_path, env)
    running.append(restarted)
    since = rec.mark()
    restarted.start()
    rec.wait_new("availability", lambda m: m.payload == b"online", since=since)
    assert rec.retained(broker.port, "monitoring/state") == b"ON"
    assert rec.retained(broker.port, "threshold/state") == b"10"
    state = json.loads(rec.retained(broker.port, "state") or b"{}")
    assert state["monitoring"] is True and state["threshold"] == 10
    assert state["baseline"]["id"] == snap["id"]
    rec.close()


def test_broker_outage_loses_no_event(
    tmp_path: Path, broker: Broker, running: list[AgentProcess]
) -> None:
    # A looping 6 s clip: a box is there from 2 s to 4 s of every loop.
    scene = DemoScene(
        frames=60,
        exposure_steps=(),
        drift=0.0,
        things=(Thing(20, 40, (120, 120), (10, 10, 10), (300.0, 150.0)),),
    )
    video = write_video(tmp_path / "loop.avi", scene)
    cam, data = new_id(), tmp_path / "data"
    env = agent_env(broker, data, cam, str(video), camera__loop="true", detector__event_gap_s="0.5")
    rec = Recorder(broker.port, f"{PREFIX}/{cam}", client_id=f"sub-{cam}", persistent=True)
    agent = AgentProcess(tmp_path, env)
    running.append(agent)
    agent.start()
    rec.wait("events", timeout=20)

    broker.stop()
    before = len(stored_events(data))
    # Changes go on while the broker is down: wait until two more events are stored.
    assert wait_for(lambda: len(stored_events(data)) >= before + 2, 30), agent.log()[-2000:]
    assert any(not delivered for _, delivered in stored_events(data))
    broker.start()

    assert rec.wait_connected(20)
    assert wait_for(lambda: all(d for _, d in stored_events(data)), 30), agent.log()[-3000:]
    happened = [event_id for event_id, _ in stored_events(data)]
    assert wait_for(lambda: {m.json()["id"] for m in rec.on("events")} >= set(happened), 20)
    received: list[str] = []
    for m in rec.on("events"):
        event_id = m.json()["id"]
        if event_id not in received:  # consumers drop duplicates by id
            received.append(event_id)
    assert received[: len(happened)] == happened  # every event, in order
    assert agent.alive()
    assert rec.retained(broker.port, "availability") == b"online"
    assert json.loads(rec.retained(broker.port, "state") or b"{}")["camera"] == "online"
    agent.stop()
    rec.close()


def test_camera_outage_goes_offline_and_back(
    tmp_path: Path, broker: Broker, running: list[AgentProcess]
) -> None:
    frame = DemoRenderer(DemoScene(things=())).frame(0)
    camera = MjpegCamera(frame)
    camera.start()
    cam = new_id()
    agent = AgentProcess(tmp_path, agent_env(broker, tmp_path / "data", cam, camera.url))
    running.append(agent)
    rec = Recorder(broker.port, f"{PREFIX}/{cam}")
    agent.start()
    try:
        rec.wait("camera/state", lambda m: m.payload == b"online", timeout=20)
        port = camera.port
        since = rec.mark()
        camera.stop()
        rec.wait_new("camera/state", lambda m: m.payload == b"offline", timeout=20, since=since)
        assert agent.alive()
        camera = MjpegCamera(frame, port=port)
        since = rec.mark()
        camera.start()
        rec.wait_new("camera/state", lambda m: m.payload == b"online", timeout=20, since=since)
        assert json.loads(rec.retained(broker.port, "state") or b"{}")["camera"] == "online"
        assert agent.alive()
        # The outage is the agent's own log lines, not FFmpeg's or OpenCV's on each retry.
        log = agent.log()
        assert "[http @" not in log and "WARN:" not in log, log[-2000:]
    finally:
        camera.stop()
        agent.stop()
        rec.close()


def test_sigterm_publishes_offline_and_kill_leaves_the_will(
    tmp_path: Path, broker: Broker, running: list[AgentProcess]
) -> None:
    cam = new_id()
    env = agent_env(broker, tmp_path / "data", cam, "demo", camera__loop="true")
    rec = Recorder(broker.port, f"{PREFIX}/{cam}")
    agent = AgentProcess(tmp_path, env)
    running.append(agent)
    agent.start()
    rec.wait("availability", lambda m: m.payload == b"online")
    healthy = subprocess.run(
        [sys.executable, "-m", "scene_agent", "healthcheck"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert healthy.returncode == 0, healthy.stderr
    started = time.monotonic()
    assert agent.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    assert rec.retained(broker.port, "availability") == b"offline"
    unhealthy = subprocess.run(
        [sys.executable, "-m", "scene_agent", "healthcheck"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert unhealthy.returncode == 1

    killed = AgentProcess(tmp_path, env)
    running.append(killed)
    since = rec.mark()
    killed.start()
    rec.wait_new("availability", lambda m: m.payload == b"online", since=since)
    since = rec.mark()
    killed.stop(signal.SIGKILL)
    rec.wait_new("availability", lambda m: m.payload == b"offline", timeout=15, since=since)
    assert rec.retained(broker.port, "availability") == b"offline"
    rec.close()


def test_bad_input_is_refused_and_the_agent_keeps_running(
    tmp_path: Path, broker: Broker, running: list[AgentProcess]
) -> None:
    cam = new_id()
    data = tmp_path / "data"
    sentinel = tmp_path / "precious.txt"
    sentinel.write_text("keep me")
    env = agent_env(broker, data, cam, "demo", camera__loop="true")
    agent = AgentProcess(tmp_path, env)
    running.append(agent)
    rec = Recorder(broker.port, f"{PREFIX}/{cam}")
    agent.start()
    rec.wait("availability", lambda m: m.payload == b"online")

    bad = [
        ("cmd/reboot", b"", "unknown command"),
        ("cmd/snapshot", b"{not json", "malformed JSON"),
        ("cmd/snapshot", b'{"frames": "ten"}', "whole number"),
        ("cmd/list", b"\xff\xfe\xfd", "UTF-8"),
        ("cmd/list", b"x" * (10 * 1024 * 1024), "too large"),
        ("cmd/list", b'{"limit": 99999999999}', "from 1 to 100"),
        ("threshold/set", b"-1", "from 0.1"),
        ("threshold/set", b"NaN", "from 0.1"),
        ("threshold/set", b"abc", "number"),
        ("monitoring/set", b"PERHAPS", "ON or OFF"),
        ("cmd/delete", json.dumps({"id": "../../precious.txt"}).encode(), "not an event id"),
        ("cmd/delete", json.dumps({"id": str(sentinel)}).encode(), "not an event id"),
        ("cmd/delete", b'{"before": "last tuesday"}', "ISO-8601"),
        ("brightness/set", b"5", "unknown command"),
    ]
    for suffix, payload, message in bad:
        reply = rec.command(suffix, payload)
        assert reply["ok"] is False, (suffix, reply)
        assert message in reply["message"], (suffix, reply)
    assert agent.alive()
    assert sentinel.read_text() == "keep me"

    # A flood: 500 commands as fast as the client can send them.
    since = rec.mark()
    for n in range(500):
        rec.send("threshold/set", str(5 + n % 7))
    rec.send("threshold/set", "33")
    rec.wait_new("reply", lambda m: m.json().get("threshold") == 33, timeout=30, since=since)
    assert agent.alive()
    assert rec.retained(broker.port, "threshold/state") == b"33"
    assert "Traceback" not in agent.log()
    agent.stop()
    rec.close()


def start_mqtt5_agent(
    tmp_path: Path, broker: Broker, running: list[AgentProcess]
) -> tuple[str, AgentProcess, Recorder]:
    """An agent speaking MQTT 5 on the demo scene, online, and an MQTT 5 recorder."""
    cam = new_id()
    env = agent_env(broker, tmp_path / "data", cam, "demo", mqtt__protocol="5")
    agent = AgentProcess(tmp_path, env)
    running.append(agent)
    rec = Recorder(broker.port, f"{PREFIX}/{cam}", v5=True)
    agent.start()
    rec.wait("availability", lambda m: m.payload == b"online")
    return cam, agent, rec


def test_mqtt5_response_topic_and_correlation_data(
    tmp_path: Path, broker: Broker, running: list[AgentProcess]
) -> None:
    cam, agent, rec = start_mqtt5_agent(tmp_path, broker, running)
    rec.send(
        "cmd/list",
        "",
        ResponseTopic=f"{PREFIX}/{cam}/responses/me",
        CorrelationData=b"req-42",
    )
    reply = rec.wait("responses/me")
    assert reply.correlation_data == b"req-42"
    assert reply.json()["command"] == "cmd/list" and reply.json()["ok"] is True
    assert rec.on("reply") == []  # answered where asked, not on the shared topic
    agent.stop()
    rec.close()


def test_retained_commands_are_refused_not_run(
    tmp_path: Path, broker: Broker, running: list[AgentProcess]
) -> None:
    cam = new_id()
    rec = Recorder(broker.port, f"{PREFIX}/{cam}")
    # Left retained on the broker, as a phone app with "retain" ticked would (an empty
    # retained payload would clear the topic instead).
    rec.client.publish(f"{PREFIX}/{cam}/cmd/stop", b"PRESS", qos=1, retain=True)
    rec.client.publish(f"{PREFIX}/{cam}/cmd/delete", b"all", qos=1, retain=True)
    agent = AgentProcess(tmp_path, agent_env(broker, tmp_path / "data", cam, "demo"))
    running.append(agent)
    agent.start()
    rec.wait("availability", lambda m: m.payload == b"online")
    stop = rec.wait("reply", lambda m: m.json()["command"] == "cmd/stop").json()
    delete = rec.wait("reply", lambda m: m.json()["command"] == "cmd/delete").json()
    for reply in (stop, delete):
        assert reply["ok"] is False and "retained" in reply["message"]
    assert rec.retained(broker.port, "monitoring/state") == b"ON"
    # A plain (not retained) stop still works.
    assert rec.command("cmd/stop")["ok"] is True
    rec.wait("monitoring/state", lambda m: m.payload == b"OFF")
    agent.stop()
    rec.close()


@pytest.mark.parametrize(
    ("response_topic", "why"),
    [("x/#", "wildcards"), ("a/+/b", "wildcards"), ("cmd/stop", "command topics")],
)
def test_bad_mqtt5_response_topics_are_refused_and_the_agent_lives(
    tmp_path: Path, broker: Broker, running: list[AgentProcess], response_topic: str, why: str
) -> None:
    cam, agent, rec = start_mqtt5_agent(tmp_path, broker, running)
    rec.wait("monitoring/state", lambda m: m.payload == b"ON")
    topic = f"{PREFIX}/{cam}/{response_topic}" if response_topic == "cmd/stop" else response_topic
    rec.send("cmd/list", "", ResponseTopic=topic, CorrelationData=b"r1")
    reply = rec.wait("reply")
    assert reply.json()["ok"] is False and why in reply.json()["message"]
    assert reply.correlation_data == b"r1"
    # Still alive and answering; monitoring was not stopped by a reply on cmd/stop.
    assert rec.command("cmd/list")["ok"] is True
    assert rec.retained(broker.port, "monitoring/state") == b"ON"
    assert agent.alive() and "Traceback" not in agent.log()
    agent.stop()
    rec.close()


def test_watch_says_when_the_broker_cannot_be_reached(
    tmp_path: Path,
    broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scene_agent.cli import main

    monkeypatch.setenv("SCENE_AGENT_MQTT__HOST", "127.0.0.1")
    monkeypatch.setenv("SCENE_AGENT_STORAGE__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCENE_AGENT_MQTT__PORT", str(broker.port))
    assert main(["watch", "--seconds", "1"]) == 0
    assert "watching scene_agent/" in capsys.readouterr().out
    monkeypatch.setenv("SCENE_AGENT_MQTT__PORT", str(free_port()))  # nothing listens there
    started = time.monotonic()
    assert main(["watch", "--seconds", "2"]) == 1
    assert time.monotonic() - started < 10
    assert "cannot reach MQTT broker" in capsys.readouterr().out
