"""Real parts for end-to-end tests: a Mosquitto broker, a recording MQTT client, and the
agent as a child process. Everything listens on loopback only."""

from __future__ import annotations

import getpass
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        pause.wait(step)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Broker:
    """Mosquitto on a free loopback port; can be stopped and started on the same port."""

    def __init__(self, folder: Path, extra_config: str = "", anonymous: bool = True) -> None:
        binary = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if binary is None:
            raise RuntimeError(
                "mosquitto is not installed: apt-get install mosquitto (.ci/run installs it)"
            )
        self.binary = binary
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous {'true' if anonymous else 'false'}\n"
            # Started as root, Mosquitto would switch to its own user and lose access to
            # the test's private temporary folder.
            f"user {getpass.getuser()}\n"
            f"{extra_config}"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 10000\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.folder / "mosquitto.log").open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        if not wait_for(lambda: port_open(self.port), 10):
            raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)
        self.process = None
        wait_for(lambda: not port_open(self.port), 5)


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    correlation_data: bytes | None = None

    def json(self) -> Any:
        return json.loads(self.payload)


class Recorder:
    """A test client that records everything under a filter and can send commands."""

    def __init__(
        self,
        port: int,
        base: str,
        *,
        client_id: str | None = None,
        persistent: bool = False,
        v5: bool = False,
        ca_file: Path | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.base = base
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._connected = threading.Event()
        cid = client_id or f"test-{uuid.uuid4().hex[:8]}"
        if v5:
            self.client = paho.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=cid,
                protocol=MQTTProtocolVersion.MQTTv5,
            )
        else:
            self.client = paho.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=cid,
                clean_session=not persistent,
            )
        self.client.reconnect_delay_set(1, 2)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        if credentials is not None:
            self.client.username_pw_set(*credentials)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *_a: self._connected.clear()
        self.client.connect(  # retry_first_connection is not needed: the broker is up
            "127.0.0.1", port, keepalive=10
        )
        self.client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError("test client could not connect")

    def _on_connect(self, client: paho.Client, *_args: Any) -> None:
        client.subscribe(self.base + "/#", qos=1)
        self._connected.set()

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), msg.retain, correlation))
            self._cond.notify_all()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout: float = 20) -> bool:
        return self._connected.wait(timeout)

    def on(self, suffix: str) -> list[Received]:
        topic = f"{self.base}/{suffix}"
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait(
        self,
        suffix: str,
        predicate: Callable[[Received], bool] = lambda _m: True,
        timeout: float = 15,
    ) -> Received:
        """The first message on ``base/suffix`` (seen so far or arriving) that matches."""
        topic = f"{self.base}/{suffix}"
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if m.topic == topic and predicate(m):
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(m.topic, m.payload[:80]) for m in self.messages[-15:]]
                    raise AssertionError(
                        f"nothing matching on {topic} within {timeout} s; last: {seen}"
                    )
                self._cond.wait(remaining)

    def mark(self) -> int:
        """A point in the message log, for ``wait_new(since=...)``."""
        with self._cond:
            return len(self.messages)

    def wait_new(
        self,
        suffix: str,
        predicate: Callable[[Received], bool] = lambda _m: True,
        timeout: float = 15,
        since: int | None = None,
    ) -> Received:
        """Like ``wait`` but only messages after ``since`` (a ``mark()``; default: now)."""
        start = self.mark() if since is None else since
        topic = f"{self.base}/{suffix}"
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages[start:]:
                    if m.topic == topic and predicate(m):
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(m.topic, m.payload[:80]) for m in self.messages[start:][-15:]]
                    raise AssertionError(f"nothing new on {topic} within {timeout} s; last: {seen}")
                self._cond.wait(remaining)

    def send(self, suffix: str, payload: bytes | str = b"", **props: Any) -> None:
        properties = None
        if props:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            for key, value in props.items():
                setattr(properties, key, value)
        self.client.publish(f"{self.base}/{suffix}", payload, qos=1, properties=properties)

    def command(self, suffix: str, payload: bytes | str = b"", timeout: float = 15) -> Any:
        """Send a command and return its JSON reply."""
        with self._cond:
            start = len(self.messages)
        self.send(suffix, payload)
        deadline = time.monotonic() + timeout
        topic = f"{self.base}/reply"
        with self._cond:
            while True:
                for m in self.messages[start:]:
                    if m.topic == topic:
                        reply = m.json()
                        if reply.get("command") == suffix[:80]:
                            return reply
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no reply to {suffix} within {timeout} s")
                self._cond.wait(remaining)

    def retained(self, port: int, suffix: str, timeout: float = 10) -> bytes | None:
        """The retained payload of ``base/suffix`` as a new subscriber gets it, or None."""
        return retained_messages(port, f"{self.base}/{suffix}", timeout).get(
            f"{self.base}/{suffix}"
        )


def retained_messages(port: int, topic_filter: str, timeout: float = 10) -> dict[str, bytes]:
    """What a fresh subscriber to ``topic_filter`` receives as retained, topic -> payload.

    A marker message is published after subscribing; the broker delivers it after the
    retained messages, so its arrival means they have all been seen (no fixed wait).
    """
    got: dict[str, bytes] = {}
    done = threading.Event()
    marker = f"test-marker/{uuid.uuid4().hex}"
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)

    def on_connect(c: paho.Client, *_a: Any) -> None:
        c.subscribe([(topic_filter, 1), (marker, 1)])

    def on_subscribe(c: paho.Client, *_a: Any) -> None:
        c.publish(marker, b"", qos=1)

    def on_message(_c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic == marker:
            done.set()
        elif msg.retain:
            got[msg.topic] = bytes(msg.payload)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise AssertionError(f"the broker did not answer a subscription to {topic_filter}")
    finally:
        client.disconnect()
        client.loop_stop()
    return got


class AgentProcess:
    """``python -m scene_agent run`` as a child process with settings from the environment."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = folder / "agent.log"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCENE_AGENT_")}
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scene_agent", "run", "--log-level", "DEBUG"],
                env=env,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class HandFed:
    """A live camera source whose frames the test (or benchmark) hands over."""

    fps: float | None = None
    frame_count: int | None = None

    def __init__(self) -> None:
        self.frames: queue.Queue[Any] = queue.Queue(maxsize=2)

    def read(self) -> Any:
        return self.frames.get()

    def close(self) -> None:
        pass
