"""Home Assistant discovery: golden payloads of every entity, and the live behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from scene_agent import __version__
from scene_agent.config import Settings, load_settings
from scene_agent.discovery import discovery_configs, removal_topics
from scene_agent.topics import Topics
from tests.mqtt_helpers import AgentProcess, Broker, Recorder, retained_messages, wait_for

BASE = "scene_agent/porch"
AVAILABILITY = {
    "availability_topic": f"{BASE}/availability",
    "payload_available": "online",
    "payload_not_available": "offline",
}
DEVICE = {
    "identifiers": ["scene_agent_porch"],
    "name": "Porch",
    "manufacturer": "scene-agent",
    "model": "scene-agent change detector",
    "sw_version": __version__,
}
ORIGIN = {"name": "scene-agent", "sw_version": __version__}


def settings(tmp_path: Path, **sections: Any) -> Settings:
    return load_settings(
        overrides={"camera": {"id": "porch", "name": "Porch"}, **sections},
        secrets_dir=tmp_path / "none",
    )


def entity(obj: str, name: str, **options: Any) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": f"scene_agent_porch_{obj}",
        **AVAILABILITY,
        **options,
        "device": DEVICE,
        "origin": ORIGIN,
    }


GOLDEN: dict[str, dict[str, Any]] = {
    "homeassistant/switch/porch/monitoring/config": entity(
        "monitoring",
        "Monitoring",
        command_topic=f"{BASE}/monitoring/set",
        state_topic=f"{BASE}/monitoring/state",
        payload_on="ON",
        payload_off="OFF",
        icon="mdi:cctv",
    ),
    "homeassistant/button/porch/take_baseline/config": entity(
        "take_baseline",
        "Take baseline",
        command_topic=f"{BASE}/cmd/snapshot",
        payload_press="PRESS",
        icon="mdi:camera-iris",
    ),
    "homeassistant/button/porch/delete_images/config": entity(
        "delete_images",
        "Delete stored images",
        command_topic=f"{BASE}/cmd/delete",
        payload_press="PRESS",
        entity_category="config",
        icon="mdi:delete-sweep",
    ),
    "homeassistant/binary_sensor/porch/scene_changed/config": entity(
        "scene_changed",
        "Scene changed",
        state_topic=f"{BASE}/change/state",
        payload_on="ON",
        payload_off="OFF",
        device_class="problem",
    ),
    "homeassistant/binary_sensor/porch/tamper/config": entity(
        "tamper",
        "Tamper",
        state_topic=f"{BASE}/tamper/state",
        payload_on="ON",
        payload_off="OFF",
        device_class="tamper",
    ),
    "homeassistant/binary_sensor/porch/camera/config": entity(
        "camera",
        "Camera",
        state_topic=f"{BASE}/camera/state",
        payload_on="online",
        payload_off="offline",
        device_class="connectivity",
        entity_category="diagnostic",
    ),
    "homeassistant/image/porch/last_change/config": entity(
        "last_change",
        "Last change",
        image_topic=f"{BASE}/events/image",
        content_type="image/jpeg",
    ),
    "homeassistant/image/porch/baseline/config": entity(
        "baseline",
        "Baseline",
        image_topic=f"{BASE}/baseline/image",
        content_type="image/jpeg",
    ),
    "homeassistant/sensor/porch/score/config": entity(
        "score",
        "Change score",
        state_topic=f"{BASE}/state",
        value_template="{{ value_json.score }}",
        state_class="measurement",
        suggested_display_precision=1,
        icon="mdi:chart-bell-curve",
    ),
    "homeassistant/sensor/porch/events_stored/config": entity(
        "events_stored",
        "Stored events",
        state_topic=f"{BASE}/state",
        value_template="{{ value_json.events_stored }}",
        state_class="measurement",
        entity_category="diagnostic",
        icon="mdi:image-multiple",
    ),
    "homeassistant/sensor/porch/reference_mode/config": entity(
        "reference_mode",
        "Reference in use",
        state_topic=f"{BASE}/state",
        value_template="{{ value_json.mode }}",
        entity_category="diagnostic",
        icon="mdi:theme-light-dark",
    ),
    "homeassistant/sensor/porch/last_change_time/config": entity(
        "last_change_time",
        "Last change",
        state_topic=f"{BASE}/last_change/state",
        device_class="timestamp",
    ),
    "homeassistant/number/porch/threshold/config": entity(
        "threshold",
        "Threshold",
        command_topic=f"{BASE}/threshold/set",
        state_topic=f"{BASE}/threshold/state",
        min=0.1,
        max=65025.0,
        step=0.1,
        mode="box",
        entity_category="config",
        icon="mdi:tune-vertical",
    ),
    "homeassistant/event/porch/scene_change/config": entity(
        "scene_change",
        "Scene change",
        state_topic=f"{BASE}/events",
        event_types=["change_started", "change_ended", "tamper_started", "tamper_ended"],
        icon="mdi:image-edit",
    ),
}


def test_every_config_matches_its_golden_payload(tmp_path: Path) -> None:
    s = settings(tmp_path)
    configs = {c.topic: c.payload for c in discovery_configs(s, Topics("scene_agent", "porch"))}
    assert set(configs) == set(GOLDEN)
    for topic, payload in GOLDEN.items():
        assert configs[topic] == payload, topic


def test_rules_every_entity_follows(tmp_path: Path) -> None:
    s = settings(tmp_path)
    configs = discovery_configs(s, Topics("scene_agent", "porch"))
    unique_ids = [c.payload["unique_id"] for c in configs]
    assert len(set(unique_ids)) == len(unique_ids)
    for c in configs:
        assert "object_id" not in c.payload and "default_entity_id" not in c.payload
        assert not c.payload["name"].lower().startswith("porch")  # has_entity_name style
        json.dumps(c.payload)  # serialisable as it stands


def test_camera_entity_only_with_preview_and_configuration_url_with_web(tmp_path: Path) -> None:
    s = settings(tmp_path, mqtt={"preview_interval_s": 2}, web={"enabled": True, "port": 8099})
    configs = {c.topic: c.payload for c in discovery_configs(s, Topics("scene_agent", "porch"))}
    camera = configs["homeassistant/camera/porch/live/config"]
    assert camera["topic"] == f"{BASE}/preview"
    assert camera["unique_id"] == "scene_agent_porch_live"
    assert camera["device"]["configuration_url"] == "http://127.0.0.1:8099/"
    assert "homeassistant/camera/porch/live/config" in removal_topics(
        settings(tmp_path), Topics("scene_agent", "porch")
    )


def test_custom_prefixes(tmp_path: Path) -> None:
    s = settings(tmp_path, mqtt={"topic_prefix": "site1", "discovery_prefix": "ha"})
    t = Topics("site1", "porch", "ha")
    configs = {c.topic: c.payload for c in discovery_configs(s, t)}
    switch = configs["ha/switch/porch/monitoring/config"]
    assert switch["command_topic"] == "site1/porch/monitoring/set"
    assert switch["availability_topic"] == "site1/porch/availability"


# --- against a real broker ------------------------------------------------------------


def env(broker: Broker, tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {
        "SCENE_AGENT_MQTT__HOST": "127.0.0.1",
        "SCENE_AGENT_MQTT__PORT": str(broker.port),
        "SCENE_AGENT_CAMERA__ID": "porch",
        "SCENE_AGENT_CAMERA__NAME": "Porch",
        "SCENE_AGENT_CAMERA__SOURCE": "demo",
        "SCENE_AGENT_CAMERA__LOOP": "true",
        "SCENE_AGENT_STORAGE__DATA_DIR": str(tmp_path / "data"),
    }
    base.update({f"SCENE_AGENT_{k.upper()}": v for k, v in extra.items()})
    return base


def test_live_discovery_reannounce_and_home_assistant_payloads(
    tmp_path: Path, broker: Broker
) -> None:
    agent = AgentProcess(tmp_path, env(broker, tmp_path))
    ha = Recorder(broker.port, "homeassistant")
    dev = Recorder(broker.port, BASE)
    agent.start()
    try:
        dev.wait("availability", lambda m: m.payload == b"online", timeout=20)
        configs = retained_messages(broker.port, "homeassistant/#")
        assert {t: json.loads(p) for t, p in configs.items()} == GOLDEN

        # Home Assistant restarts: its birth message makes the agent announce again.
        since, dev_since = ha.mark(), dev.mark()
        ha.send("status", "online")
        ha.wait_new("switch/porch/monitoring/config", since=since)
        dev.wait_new("availability", lambda m: m.payload == b"online", since=dev_since)
        dev.wait_new("monitoring/state", since=dev_since)

        # Home Assistant's default command payloads act on the agent.
        since = dev.mark()
        dev.send("monitoring/set", "OFF")
        dev.wait_new("monitoring/state", lambda m: m.payload == b"OFF", since=since)
        since = dev.mark()
        dev.send("monitoring/set", "ON")
        dev.wait_new("monitoring/state", lambda m: m.payload == b"ON", since=since)
        since = dev.mark()
        dev.send("threshold/set", "25.5")
        dev.wait_new("threshold/state", lambda m: m.payload == b"25.5", since=since)
        since = dev.mark()
        dev.send("cmd/snapshot", "PRESS")
        reply = dev.wait_new("reply", since=since).json()
        assert reply["command"] == "cmd/snapshot" and reply["ok"] is True
        dev.wait_new("baseline/image", since=since)
        dev.wait("last_change/state", timeout=30)  # the demo's passer-by
        since = dev.mark()
        dev.send("cmd/delete", "PRESS")
        reply = dev.wait_new("reply", since=since).json()
        assert reply["command"] == "cmd/delete" and reply["ok"] is True
        dev.wait_new("state", lambda m: m.json()["events_stored"] == 0, since=since)
    finally:
        agent.stop()

    # ha-remove empties every retained config: Home Assistant drops the device.
    proc = subprocess.run(
        [sys.executable, "-m", "scene_agent", "ha-remove"],
        env={**env(broker, tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert retained_messages(broker.port, "homeassistant/#") == {}
    ha.close()
    dev.close()


def test_discovery_disabled_publishes_none(tmp_path: Path, broker: Broker) -> None:
    agent = AgentProcess(tmp_path, env(broker, tmp_path, discovery__enabled="false"))
    ha = Recorder(broker.port, "homeassistant")
    dev = Recorder(broker.port, BASE)
    agent.start()
    try:
        dev.wait("availability", lambda m: m.payload == b"online", timeout=20)
        ha.send("status", "online")
        dev.wait("monitoring/state")
        assert wait_for(lambda: len(ha.messages) >= 1, 5)  # our own birth message
        assert [m.topic for m in ha.messages] == ["homeassistant/status"]
    finally:
        agent.stop()
        ha.close()
        dev.close()
