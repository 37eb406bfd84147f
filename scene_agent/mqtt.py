"""The MQTT adapter: a paho 2.x client behind a small interface.

Threads: paho's network thread (``loop_start``) runs the callbacks, which only translate
what happened into inbox messages and return — they never block and never raise. The
first connection is retried with tenacity in a thread of its own (the agent works while
the broker is down); after it, paho's loop owns reconnecting. One retry owner at a time.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from scene_agent.config import MqttSettings
from scene_agent.inbox import (
    CameraState,
    Connected,
    Delivered,
    Disconnected,
    Inbox,
    Message,
    Notice,
)
from scene_agent.retry import backoff

__all__ = [
    "Bus",
    "CameraState",
    "Connected",
    "Delivered",
    "Disconnected",
    "Inbox",
    "Message",
    "MqttBus",
    "Notice",
    "apply_credentials",
]

log = logging.getLogger(__name__)


class Bus(Protocol):
    """What the agent needs of a message bus (a seam for tests)."""

    def start(self) -> None: ...

    def stop(self, goodbye: tuple[str, bytes] | None) -> None: ...

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        correlation_data: bytes | None = None,
    ) -> int | None: ...

    def subscribe(self, filters: tuple[str, ...]) -> None: ...


# --- the paho implementation --------------------------------------------------------------


def apply_credentials(client: paho.Client, settings: MqttSettings) -> None:
    """Username, password and TLS from the settings, for the agent and one-shot clients."""
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls.enabled:
        tls = settings.tls
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,  # None: system CAs
            certfile=str(tls.certfile) if tls.certfile else None,
            keyfile=str(tls.keyfile) if tls.keyfile else None,
            cert_reqs=ssl.CERT_NONE if tls.insecure else ssl.CERT_REQUIRED,
        )
        if tls.insecure:
            log.warning("MQTT TLS certificate checks are OFF (mqtt.tls.insecure): testing only")
            client.tls_insecure_set(True)


class MqttBus:
    """A paho client configured from settings. Constructing it does no I/O."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        will: tuple[str, bytes],
        inbox: Inbox,
        first_connect_max_s: float = 30.0,
    ) -> None:
        self._settings = settings
        self._inbox = inbox
        self._first_connect_max_s = first_connect_max_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_started = False
        self._v5 = settings.protocol == "5"
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.will_set(will[0], will[1], qos=1, retain=True)
        apply_credentials(self._client, settings)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._connect_first, name="mqtt-connect", daemon=True
        )
        self._thread.start()

    def _connect_first(self) -> None:
        s = self._settings
        retrying = backoff(
            self._stopping,
            OSError,
            first_s=1.0,
            max_s=self._first_connect_max_s,
            describe=lambda exc, wait: (
                f"MQTT broker {s.host}:{s.port} unreachable ({exc}); retrying in {wait:.0f} s"
            ),
            log=log,
        )
        result = retrying(self._client.connect, s.host, s.port, s.keepalive)
        if result is None or self._stopping.is_set():
            return
        # From here on paho's own loop reconnects after any drop.
        self._client.loop_start()
        self._loop_started = True

    def stop(self, goodbye: tuple[str, bytes] | None) -> None:
        """Publish ``goodbye`` (retained) if connected, then disconnect; bounded in time."""
        self._stopping.set()
        if self._client.is_connected() and goodbye is not None:
            info = self._client.publish(goodbye[0], goodbye[1], qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=1.5)
        with contextlib.suppress(Exception):
            self._client.disconnect()
        if self._loop_started:
            self._client.loop_stop()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    # --- agent-thread calls -----------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        correlation_data: bytes | None = None,
    ) -> int | None:
        """Queue a message; its mid, or None when the client is not connected."""
        properties = None
        if correlation_data is not None and self._v5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.CorrelationData = correlation_data
        try:
            info = self._client.publish(
                topic, payload, qos=qos, retain=retain, properties=properties
            )
        except ValueError as exc:  # a topic paho refuses (wildcards, empty, too long)
            log.warning("not published to %r: %s", topic[:100], exc)
            return None
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    def subscribe(self, filters: tuple[str, ...]) -> None:
        if filters:
            self._client.subscribe([(f, 1) for f in filters])

    # --- callbacks (network thread): translate and return ---------------------------------

    def _on_connect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: Any,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        try:
            if reason_code.is_failure:
                log.error("MQTT broker refused the connection: %s", reason_code)
                return
            log.info("connected to MQTT broker %s:%d", self._settings.host, self._settings.port)
            self._inbox.put_notice(Connected())
        except Exception:
            log.exception("MQTT connect callback failed")

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: Any,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        try:
            if not self._stopping.is_set():
                log.warning("MQTT connection lost (%s); paho reconnects", reason_code)
            self._inbox.put_notice(Disconnected(str(reason_code)))
        except Exception:
            log.exception("MQTT disconnect callback failed")

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            response_topic = correlation = None
            props = getattr(msg, "properties", None)
            if props is not None:
                response_topic = getattr(props, "ResponseTopic", None)
                correlation = getattr(props, "CorrelationData", None)
            self._inbox.put_command(
                Message(
                    msg.topic,
                    bytes(msg.payload),
                    response_topic,
                    correlation,
                    retained=bool(msg.retain),
                )
            )
        except Exception:
            log.exception("MQTT message callback failed")

    def _on_publish(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        try:
            if not reason_code.is_failure:
                self._inbox.put_notice(Delivered(mid))
        except Exception:
            log.exception("MQTT publish callback failed")
