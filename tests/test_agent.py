"""The agent at its seams: a fake bus and a hand-fed camera, no network (fast)."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scene_agent.agent import Agent
from scene_agent.camera import Camera, Source
from scene_agent.config import Settings, load_settings
from scene_agent.demo import DemoRenderer, DemoScene, Thing
from scene_agent.detector import Image
from scene_agent.mqtt import Connected, Delivered, Disconnected, Inbox, Message
from scene_agent.topics import Topics
from tests.mqtt_helpers import HandFed, wait_for


@dataclass
class Sent:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int


class FakeBus:
    """Records what the agent publishes; the test decides when it is connected and acks."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.connected = False
        self.sent: list[Sent] = []
        self.subscribed: list[tuple[str, ...]] = []
        self._mid = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        pass

    def stop(self, goodbye: tuple[str, bytes] | None) -> None:
        if goodbye is not None and self.connected:
            self.publish(goodbye[0], goodbye[1], retain=True)

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        correlation_data: bytes | None = None,
    ) -> int | None:
        if not self.connected:
            return None
        data = payload.encode() if isinstance(payload, str) else payload
        with self._lock:
            self._mid += 1
            self.sent.append(Sent(topic, data, qos, retain, self._mid))
            return self._mid

    def subscribe(self, filters: tuple[str, ...]) -> None:
        self.subscribed.append(filters)

    # --- the test's side ---

    def connect(self) -> None:
        self.connected = True
        self.inbox.put_notice(Connected())

    def drop(self) -> None:
        self.connected = False
        self.inbox.put_notice(Disconnected("test"))

    def on(self, topic: str) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.topic == topic]

    def ack(self, sent: list[Sent]) -> None:
        for s in sent:
            self.inbox.put_notice(Delivered(s.mid))


CLEAN = DemoRenderer(DemoScene(frames=1, drift=0.0, noise_sigma=2.0)).frame(0)
CHANGED = DemoRenderer(
    DemoScene(
        frames=1,
        drift=0.0,
        noise_sigma=2.0,
        things=(Thing(0, None, (100, 100), (0, 0, 0), (200.0, 100.0)),),
    )
).frame(0)


class Rig:
    def __init__(self, settings: Settings) -> None:
        self.reader = HandFed()
        camera = Camera(Source("url", "test://hand-fed"), opener=lambda _s: self.reader)
        self.bus: FakeBus | None = None

        def factory(inbox: Inbox, _topics: Topics) -> FakeBus:
            self.bus = FakeBus(inbox)
            return self.bus

        self.agent = Agent(settings, bus_factory=factory, camera=camera)
        self.topics = self.agent.topics
        self.stop = threading.Event()
        self.image: Image = CLEAN
        self.feeding = threading.Event()
        self.feeding.set()
        self.thread = threading.Thread(target=self.agent.run, args=(self.stop,))
        self.feeder = threading.Thread(target=self._feed, daemon=True)

    def _feed(self) -> None:
        pause = threading.Event()
        while self.feeding.is_set():
            try:
                self.reader.frames.put(self.image, timeout=0.1)
            except queue.Full:
                continue
            pause.wait(0.01)  # a 100 fps camera

    def start(self) -> FakeBus:
        self.thread.start()
        self.feeder.start()
        assert wait_for(lambda: self.bus is not None, 5)
        assert self.bus is not None
        return self.bus

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.feeding.clear()

    def events(self) -> list[dict[str, Any]]:
        assert self.bus is not None
        return [json.loads(s.payload) for s in self.bus.on(self.topics.events)]


def make_settings(tmp_path: Path, **detector: Any) -> Settings:
    return load_settings(
        overrides={
            "camera": {"id": "unit", "fps": 10},
            "detector": {"event_gap_s": 0.3, "min_frames": 2, **detector},
            "storage": {"data_dir": tmp_path / "data"},
            "mqtt": {"state_interval_s": 1},
        },
        secrets_dir=tmp_path / "none",
    )


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(make_settings(tmp_path))
    yield r
    r.close()


def test_detection_rate_is_capped_by_camera_fps(rig: Rig) -> None:
    bus = rig.start()
    bus.connect()
    assert wait_for(
        lambda: any(json.loads(s.payload)["fps"] > 0 for s in bus.on(rig.topics.state)), 10
    )
    assert wait_for(lambda: len(bus.on(rig.topics.state)) >= 4, 10)
    fps = json.loads(bus.on(rig.topics.state)[-1].payload)["fps"]
    assert 7 <= fps <= 11  # 10 fps asked for, from a 100 fps camera


def test_connect_subscribes_and_publishes_all_retained_state(rig: Rig) -> None:
    bus = rig.start()
    bus.connect()
    t = rig.topics
    assert wait_for(lambda: bool(bus.on(t.availability)) and bool(bus.on(t.threshold_state)))
    assert bus.subscribed[0] == (f"{t.base}/cmd/#", f"{t.base}/+/set", "homeassistant/status")
    assert bus.on(t.availability)[0].payload == b"online"
    for topic in (t.availability, t.monitoring_state, t.change_state, t.camera_state, t.state):
        assert all(s.retain and s.qos == 1 for s in bus.on(topic)), topic
    # A reconnect publishes everything again.
    count = len(bus.on(t.monitoring_state))
    bus.drop()
    bus.connect()
    assert wait_for(lambda: len(bus.on(t.monitoring_state)) > count)
    assert len(bus.subscribed) == 2


def test_events_wait_for_the_ack_and_survive_a_drop(rig: Rig, tmp_path: Path) -> None:
    bus = rig.start()
    assert wait_for(lambda: rig.agent.state().baseline_id is not None, 10)
    # Disconnected: a change happens and ends; nothing can be sent.
    rig.image = CHANGED
    assert wait_for(lambda: rig.agent.state().change, 10)
    rig.image = CLEAN
    assert wait_for(lambda: not rig.agent.state().change, 10)
    assert rig.events() == []
    bus.connect()
    assert wait_for(lambda: len(rig.events()) == 2, 10)
    first_try = [e["id"] for e in rig.events()]
    assert [e["type"] for e in rig.events()] == ["start", "end"]
    # The connection drops before the broker acknowledged: both are sent again.
    bus.drop()
    bus.connect()
    assert wait_for(lambda: len(rig.events()) == 4, 10)
    assert [e["id"] for e in rig.events()][2:] == first_try
    bus.ack(bus.on(rig.topics.events)[2:])
    assert wait_for(lambda: rig.agent.state().events_stored == 2)
    # Acknowledged: a further reconnect sends nothing again.
    bus.drop()
    bus.connect()
    assert wait_for(lambda: len(bus.on(rig.topics.availability)) == 3)
    assert len(rig.events()) == 4


def test_commands_reply_and_change_state(rig: Rig) -> None:
    bus = rig.start()
    bus.connect()
    t = rig.topics

    def send(name: str, payload: bytes) -> dict[str, Any]:
        count = len(bus.on(t.reply))
        rig.agent.inbox.put_command(Message(t.command(name), payload))
        assert wait_for(lambda: len(bus.on(t.reply)) > count, 10)
        reply: dict[str, Any] = json.loads(bus.on(t.reply)[-1].payload)
        return reply

    assert send("threshold/set", b"42")["ok"] is True
    assert wait_for(lambda: bus.on(t.threshold_state)[-1].payload == b"42")
    assert send("monitoring/set", b"OFF") == {
        "command": "monitoring/set",
        "ok": True,
        "message": "monitoring OFF",
        "monitoring": False,
    }
    assert wait_for(lambda: bus.on(t.monitoring_state)[-1].payload == b"OFF")
    snap = send("cmd/snapshot", b'{"frames": 3}')
    assert snap["ok"] is True and snap["frames"] == 3
    assert bus.on(t.baseline_image)[-1].retain
    bad = send("threshold/set", b"NaN")
    assert bad["ok"] is False and "from 0.1" in bad["message"]
    assert np.isclose(rig.agent.state().threshold, 42)


def test_monitoring_off_ends_an_open_episode(rig: Rig) -> None:
    bus = rig.start()
    bus.connect()
    assert wait_for(lambda: rig.agent.state().baseline_id is not None, 10)
    rig.image = CHANGED
    assert wait_for(lambda: [e["type"] for e in rig.events()] == ["start"], 10)
    rig.agent.inbox.put_command(Message(rig.topics.command("cmd/stop"), b""))
    assert wait_for(lambda: [e["type"] for e in rig.events()] == ["start", "end"], 10)
    assert wait_for(lambda: bus.on(rig.topics.change_state)[-1].payload == b"OFF")


COVERED = np.full_like(CLEAN, 14)
BLINDED = np.full_like(CLEAN, 252)
# Turned away: another view altogether (another room, another texture).
TURNED = DemoRenderer(DemoScene(frames=1, drift=0.0, seed=31, things=())).frame(0)
NIGHT = np.repeat(CLEAN.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)


@pytest.fixture
def quick(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(make_settings(tmp_path, learn_s=0.5, tamper_s=0.3, tamper_clear_s=0.5))
    yield r
    r.close()


def learned(rig: Rig) -> bool:
    state = rig.agent.state()
    return state.baseline_id is not None and not state.learning and bool(state.references)


def test_a_covered_lens_is_tamper_not_a_change(quick: Rig) -> None:
    bus = quick.start()
    bus.connect()
    t = quick.topics
    assert wait_for(lambda: learned(quick) and bool(bus.on(t.tamper_state)), 10)
    assert bus.on(t.tamper_state)[-1].payload == b"OFF"
    quick.image = COVERED
    assert wait_for(lambda: [e["event_type"] for e in quick.events()] == ["tamper_started"], 10)
    started = quick.events()[0]
    assert started["reason"] == "covered" and started["type"] == "start"
    assert wait_for(lambda: bus.on(t.tamper_state)[-1].payload == b"ON")
    assert bus.on(t.tamper_state)[-1].retain
    assert json.loads(bus.on(t.state)[-1].payload)["tamper"] == "covered"
    quick.image = CLEAN
    assert wait_for(lambda: len(quick.events()) == 2, 10)
    ended = quick.events()[1]
    assert ended["event_type"] == "tamper_ended" and ended["episode"] == started["id"]
    assert ended["reason"] == "covered" and ended["duration_s"] > 0
    assert wait_for(lambda: bus.on(t.tamper_state)[-1].payload == b"OFF")
    assert not any(e["event_type"].startswith("change") for e in quick.events())
    assert quick.agent.state().change is False


def test_snapshot_learns_over_the_window_and_the_model_survives_a_restart(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, learn_s=0.5)
    rig = Rig(settings)
    bus = rig.start()
    bus.connect()
    t = rig.topics
    assert wait_for(lambda: learned(rig), 10)
    rig.agent.inbox.put_command(Message(t.command("cmd/snapshot"), b"PRESS"))
    assert wait_for(lambda: bool(bus.on(t.reply)), 10)
    reply = json.loads(bus.on(t.reply)[-1].payload)
    assert reply["ok"] is True and reply["frames"] == 5  # 0.5 s at 10 fps
    model = settings.storage.data_dir / "baseline-model-colour.npz"
    assert model.exists()
    rig.close()
    again = Rig(settings)
    again.start()
    try:
        # Restored with its learned variation: nothing to learn, frames are judged at once.
        assert wait_for(lambda: again.agent.state().baseline_id == reply["id"], 10)
        assert wait_for(lambda: again.agent.state().score is not None, 10)
        assert again.agent.state().learning is False
        assert again.agent.state().references == ("colour",)
    finally:
        again.close()


def test_night_mode_learns_its_own_reference_and_opens_no_episode(quick: Rig) -> None:
    bus = quick.start()
    bus.connect()
    assert wait_for(lambda: learned(quick), 10)
    quick.image = NIGHT
    assert wait_for(lambda: quick.agent.state().references == ("colour", "grey"), 10)
    assert wait_for(lambda: quick.agent.state().mode == "grey" and learned(quick), 10)
    assert json.loads(bus.on(quick.topics.state)[-1].payload)["mode"] == "grey"
    quick.image = CLEAN
    assert wait_for(lambda: quick.agent.state().mode == "colour", 10)
    quick.image = NIGHT
    assert wait_for(lambda: quick.agent.state().mode == "grey", 10)
    data_dir = quick.agent.settings.storage.data_dir
    assert (data_dir / "baseline-model-grey.npz").exists()
    assert [
        (e["event_type"], e["score"], e["changed_fraction"], e["boxes"]) for e in quick.events()
    ] == []


@pytest.mark.parametrize(("image", "reason"), [(BLINDED, "blinded"), (TURNED, "moved")])
def test_blinded_or_turned_camera_is_tamper_and_ends_when_restored(
    quick: Rig, image: Image, reason: str
) -> None:
    bus = quick.start()
    bus.connect()
    assert wait_for(lambda: learned(quick), 10)
    quick.image = image
    assert wait_for(lambda: [e["event_type"] for e in quick.events()] == ["tamper_started"], 10)
    assert quick.events()[0]["reason"] == reason
    quick.image = CLEAN
    assert wait_for(lambda: len(quick.events()) == 2, 10)
    assert quick.events()[1]["event_type"] == "tamper_ended"
    assert not any(e["event_type"].startswith("change") for e in quick.events())


def test_a_command_flood_is_logged_once_per_interval(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    bus = rig.start()
    bus.connect()
    t = rig.topics
    assert wait_for(lambda: bool(bus.on(t.availability)), 10)
    caplog.set_level(logging.WARNING, logger="scene_agent.agent")
    for burst in range(1, 4):
        for _ in range(1500):
            rig.agent.inbox.put_command(Message(t.command("cmd/list"), b""))
        at_least = 1000 * burst
        assert wait_for(lambda: rig.agent.inbox.dropped >= at_least, 10)  # noqa: B023
    assert wait_for(lambda: any("command flood" in r.message for r in caplog.records), 10)
    floods = [r for r in caplog.records if "command flood" in r.message]
    assert len(floods) == 1  # three bursts within one interval: one line
    # Commands that got in were all answered.
    assert wait_for(lambda: len(bus.on(t.reply)) == 4500 - rig.agent.inbox.dropped, 20)
