"""Short-lived MQTT clients for the command line: ``watch`` and ``ha-remove``."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from scene_agent.config import Settings
from scene_agent.discovery import removal_topics
from scene_agent.mqtt import apply_credentials
from scene_agent.topics import Topics

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0


def describe(topics: Topics, topic: str, payload: bytes) -> str | None:
    """One printable line for a message, or None for ones not worth a line."""
    name = topics.command_name(topic) or topic
    if name in ("events/image", "baseline/image", "preview"):
        return f"{name}: JPEG, {len(payload) / 1024:.0f} KiB"
    text = payload.decode("utf-8", "replace")
    if name == "events":
        try:
            event: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError:
            return f"events: {text[:200]}"
        extra = (
            f", peak {event.get('peak_score')}, lasted {event.get('duration_s')} s"
            if event.get("type") == "end"
            else ""
        )
        return (
            f"EVENT {event.get('event_type')} at {event.get('time')}: score "
            f"{event.get('score')}, {len(event.get('boxes', []))} box(es){extra}, "
            f"image {event.get('image')} (id {event.get('id')})"
        )
    if name == "state":
        return None  # the per-topic state lines say the same, one change at a time
    return f"{name}: {text[:300]}"


def make_client(settings: Settings) -> paho.Client:
    """A paho client with the agent's broker credentials and TLS settings."""
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    apply_credentials(client, settings.mqtt)
    return client


def ha_remove(settings: Settings, timeout: float = 10.0) -> int:
    """Publish empty retained discovery configs: Home Assistant removes the device."""
    m = settings.mqtt
    client = make_client(settings)
    try:
        client.connect(m.host, m.port, m.keepalive)
    except OSError as exc:
        print(f"scene-agent: error: cannot reach MQTT broker {m.host}:{m.port}: {exc}")
        return 1
    client.loop_start()
    try:
        infos = [
            client.publish(topic, b"", qos=1, retain=True)
            for topic in removal_topics(settings, Topics.for_settings(settings))
        ]
        for info in infos:
            info.wait_for_publish(timeout)
        print(f"removed {len(infos)} discovery config(s) for camera {settings.camera.id!r}")
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


def watch(settings: Settings, count: int | None = None, seconds: float | None = None) -> int:
    m = settings.mqtt
    topics = Topics.for_settings(settings)
    done = threading.Event()
    connected = threading.Event()
    events_seen = 0

    def on_connect(client: paho.Client, _userdata: Any, _flags: Any, reason: Any, *_a: Any) -> None:
        if reason.is_failure:
            print(f"scene-agent: error: the MQTT broker refused the connection: {reason}")
            done.set()
            return
        connected.set()
        client.subscribe(topics.base + "/#", qos=1)
        print(f"watching {topics.base}/# on {m.host}:{m.port}", flush=True)

    def on_message(_client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        nonlocal events_seen
        line = describe(topics, msg.topic, bytes(msg.payload))
        if line is not None:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
        if msg.topic == topics.events:
            events_seen += 1
            if count is not None and events_seen >= count:
                done.set()

    client = make_client(settings)
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect_async(m.host, m.port, m.keepalive)
    client.loop_start()
    try:
        limit = CONNECT_TIMEOUT_S if seconds is None else min(seconds, CONNECT_TIMEOUT_S)
        if not connected.wait(limit) and not done.is_set():
            print(
                f"scene-agent: error: cannot reach MQTT broker {m.host}:{m.port} within {limit:g} s"
            )
            return 1
        if done.is_set() and not connected.is_set():
            return 1
        done.wait(seconds)
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0
