"""The composition root: builds the camera, the MQTT bus, the web page and the agent,
and owns the order they start and stop in. Nothing but the command line imports it.

Start: the agent (its stores, detector and baseline, then the camera and the broker
connection), then the web page. Stop: the web page first, then the agent, which
publishes ``offline`` and closes the camera and its stores.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from scene_agent.agent import Agent
from scene_agent.camera import Camera, parse_source
from scene_agent.config import Settings
from scene_agent.inbox import CameraState, Inbox
from scene_agent.mqtt import Bus, MqttBus
from scene_agent.topics import Topics

log = logging.getLogger(__name__)


def mqtt_bus(settings: Settings) -> Callable[[Inbox, Topics], Bus]:
    """A factory for the agent's MQTT bus (paho), with its last will."""

    def make(inbox: Inbox, topics: Topics) -> Bus:
        client_id = settings.mqtt.client_id or f"scene-agent-{settings.camera.id}"
        return MqttBus(settings.mqtt, client_id, (topics.availability, b"offline"), inbox)

    return make


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.inbox = Inbox()
        s = settings
        self.camera = Camera(
            parse_source(s.camera.source, loop=s.camera.loop),
            on_state=lambda online: self.inbox.put_notice(CameraState(online)),
            max_backoff_s=s.camera.retry_max_s,
        )
        self.agent = Agent(
            settings,
            bus_factory=mqtt_bus(settings),
            camera=self.camera,
            inbox=self.inbox,
            views=s.web.enabled,
        )
        self._web: Any = None

    def run(self, stop: threading.Event) -> None:
        self.agent.start()
        try:
            if self.settings.web.enabled:
                self._start_web()
            self.agent.loop(stop)
        finally:
            if self._web is not None:
                self._web.stop()
            self.agent.shutdown()

    def _start_web(self) -> None:
        s = self.settings
        try:
            from scene_agent.web import PreviewHub, WebContext, WebServer  # noqa: PLC0415
        except ImportError as exc:
            log.error(  # noqa: TRY400 - the reason is the message
                "web page not started: it needs the 'web' extra (pip install "
                "'scene-agent[web]'): %s",
                exc,
            )
            return

        hub = PreviewHub(
            self.camera.latest, s.web.preview_fps, s.mqtt.image_quality, s.web.max_streams
        )
        context = WebContext(
            settings=s,
            topics=self.agent.topics,
            inbox=self.inbox,
            hub=hub,
            state=lambda: self.agent.state_view,
            data_dir=s.storage.data_dir,
            scores=lambda: self.agent.scores_view,
        )
        web = WebServer(context)
        try:
            web.start()
        except OSError as exc:
            log.error(  # noqa: TRY400 - the reason is the message
                "web page not started: cannot listen on %s:%d (%s)", s.web.host, s.web.port, exc
            )
            return
        self._web = web
