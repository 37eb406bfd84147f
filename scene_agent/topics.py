"""Every MQTT topic the agent uses, built in one place (DESIGN section 4).

``base = {topic_prefix}/{camera.id}``. Nothing else in the code formats a topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scene_agent.config import Settings

# Commands: the part of the topic below ``base``.
CMD_SNAPSHOT = "cmd/snapshot"
CMD_START = "cmd/start"
CMD_STOP = "cmd/stop"
CMD_DELETE = "cmd/delete"
CMD_LIST = "cmd/list"
MONITORING_SET = "monitoring/set"
THRESHOLD_SET = "threshold/set"
COMMANDS = (CMD_SNAPSHOT, CMD_START, CMD_STOP, CMD_DELETE, CMD_LIST, MONITORING_SET, THRESHOLD_SET)


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    camera_id: str
    discovery_prefix: str = "homeassistant"

    @classmethod
    def for_settings(cls, settings: Settings) -> Topics:
        m = settings.mqtt
        return cls(m.topic_prefix, settings.camera.id, m.discovery_prefix)

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.camera_id}"

    def _t(self, suffix: str) -> str:
        return f"{self.base}/{suffix}"

    @property
    def availability(self) -> str:
        return self._t("availability")

    @property
    def state(self) -> str:
        return self._t("state")

    @property
    def monitoring_state(self) -> str:
        return self._t("monitoring/state")

    @property
    def change_state(self) -> str:
        return self._t("change/state")

    @property
    def camera_state(self) -> str:
        return self._t("camera/state")

    @property
    def tamper_state(self) -> str:
        return self._t("tamper/state")

    @property
    def threshold_state(self) -> str:
        return self._t("threshold/state")

    @property
    def last_change_state(self) -> str:
        """Time of the latest change start (ISO-8601); only ever published with a time."""
        return self._t("last_change/state")

    @property
    def events(self) -> str:
        return self._t("events")

    @property
    def events_image(self) -> str:
        return self._t("events/image")

    @property
    def baseline_image(self) -> str:
        return self._t("baseline/image")

    @property
    def preview(self) -> str:
        return self._t("preview")

    @property
    def reply(self) -> str:
        return self._t("reply")

    def command(self, name: str) -> str:
        """The topic of a command, e.g. ``command("cmd/list")``."""
        return self._t(name)

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """Filters that catch every command topic, known or not (unknown ones get a reply)."""
        return (self._t("cmd/#"), self._t("+/set"))

    def discovery_config(self, component: str, obj: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.camera_id}/{obj}/config"

    def response_topic_problem(self, topic: str) -> str | None:
        """Why a requested MQTT 5 response topic must not be used, or None if it may.

        A reply goes to a plain topic name (no wildcards, no NUL, at most 65535 bytes)
        that is not one of the agent's command topics: a reply published onto
        ``cmd/stop`` would be a command.
        """
        if not topic:
            return "the response topic is empty"
        if "+" in topic or "#" in topic or "\0" in topic:
            return "the response topic must be a topic name, without wildcards"
        if len(topic.encode("utf-8", "surrogatepass")) > 65535:
            return "the response topic is too long"
        name = self.command_name(topic)
        if name is not None and (
            name.startswith("cmd/") or (name.count("/") == 1 and name.endswith("/set"))
        ):
            return "the response topic may not be one of the agent's command topics"
        return None

    def command_name(self, topic: str) -> str | None:
        """The command part of a topic under ``base`` (``cmd/list``), or None if outside."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            return None
        return topic[len(prefix) :]
