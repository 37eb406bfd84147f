"""Home Assistant MQTT discovery: one device per camera, built by a pure function of the
settings (ANCHORS section 5; DESIGN section 4).

Per-entity configs under ``{discovery_prefix}/<component>/<camera.id>/<object>/config``,
retained; ``unique_id`` = ``scene_agent_<camera.id>_<object>``; entity names in
``has_entity_name`` style (they never repeat the device name); availability on
``base/availability``. No ``object_id`` (deprecated by Home Assistant).

Every state an entity reads is a retained topic that is never null where Home Assistant
would warn about it: the timestamp sensor reads ``base/last_change/state``, which is only
ever published with a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scene_agent import __version__
from scene_agent.commands import MAX_THRESHOLD, MIN_THRESHOLD
from scene_agent.config import Settings
from scene_agent.topics import Topics

MANUFACTURER = "scene-agent"
MODEL = "scene-agent change detector"


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    topic: str
    payload: dict[str, Any]


def device_block(settings: Settings) -> dict[str, Any]:
    device: dict[str, Any] = {
        "identifiers": [f"scene_agent_{settings.camera.id}"],
        "name": settings.camera.name,
        "manufacturer": MANUFACTURER,
        "model": MODEL,
        "sw_version": __version__,
    }
    if settings.web.enabled:
        device["configuration_url"] = f"http://{settings.web.host}:{settings.web.port}/"
    return device


def discovery_configs(settings: Settings, topics: Topics) -> list[DiscoveryConfig]:
    """Every entity's config; the camera entity only when the live preview is on."""
    camera_id = settings.camera.id
    device = device_block(settings)
    origin = {"name": "scene-agent", "sw_version": __version__}

    def entity(component: str, obj: str, name: str, **options: Any) -> DiscoveryConfig:
        payload: dict[str, Any] = {
            "name": name,
            "unique_id": f"scene_agent_{camera_id}_{obj}",
            "availability_topic": topics.availability,
            "payload_available": "online",
            "payload_not_available": "offline",
            **options,
            "device": device,
            "origin": origin,
        }
        return DiscoveryConfig(topics.discovery_config(component, obj), payload)

    configs = [
        entity(
            "switch",
            "monitoring",
            "Monitoring",
            command_topic=topics.command("monitoring/set"),
            state_topic=topics.monitoring_state,
            payload_on="ON",
            payload_off="OFF",
            icon="mdi:cctv",
        ),
        entity(
            "button",
            "take_baseline",
            "Take baseline",
            command_topic=topics.command("cmd/snapshot"),
            payload_press="PRESS",
            icon="mdi:camera-iris",
        ),
        entity(
            "button",
            "delete_images",
            "Delete stored images",
            command_topic=topics.command("cmd/delete"),
            payload_press="PRESS",
            entity_category="config",
            icon="mdi:delete-sweep",
        ),
        # problem, not motion: the sensor stays ON for as long as the scene differs from
        # the reference (a bag left behind, a door left open), which is "not as you left
        # it", not "something is moving". Tamper has its own sensor below.
        entity(
            "binary_sensor",
            "scene_changed",
            "Scene changed",
            state_topic=topics.change_state,
            payload_on="ON",
            payload_off="OFF",
            device_class="problem",
        ),
        entity(
            "binary_sensor",
            "tamper",
            "Tamper",
            state_topic=topics.tamper_state,
            payload_on="ON",
            payload_off="OFF",
            device_class="tamper",
        ),
        entity(
            "binary_sensor",
            "camera",
            "Camera",
            state_topic=topics.camera_state,
            payload_on="online",
            payload_off="offline",
            device_class="connectivity",
            entity_category="diagnostic",
        ),
        entity(
            "image",
            "last_change",
            "Last change",
            image_topic=topics.events_image,
            content_type="image/jpeg",
        ),
        entity(
            "image",
            "baseline",
            "Baseline",
            image_topic=topics.baseline_image,
            content_type="image/jpeg",
        ),
        entity(
            "sensor",
            "score",
            "Change score",
            state_topic=topics.state,
            value_template="{{ value_json.score }}",
            state_class="measurement",
            suggested_display_precision=1,
            icon="mdi:chart-bell-curve",
        ),
        entity(
            "sensor",
            "events_stored",
            "Stored events",
            state_topic=topics.state,
            value_template="{{ value_json.events_stored }}",
            state_class="measurement",
            entity_category="diagnostic",
            icon="mdi:image-multiple",
        ),
        entity(
            "sensor",
            "reference_mode",
            "Reference in use",
            state_topic=topics.state,
            value_template="{{ value_json.mode }}",
            entity_category="diagnostic",
            icon="mdi:theme-light-dark",
        ),
        entity(
            "sensor",
            "last_change_time",
            "Last change",
            state_topic=topics.last_change_state,
            device_class="timestamp",
        ),
        entity(
            "number",
            "threshold",
            "Threshold",
            command_topic=topics.command("threshold/set"),
            state_topic=topics.threshold_state,
            min=MIN_THRESHOLD,
            max=MAX_THRESHOLD,
            step=0.1,
            mode="box",
            entity_category="config",
            icon="mdi:tune-vertical",
        ),
        entity(
            "event",
            "scene_change",
            "Scene change",
            state_topic=topics.events,
            event_types=["change_started", "change_ended", "tamper_started", "tamper_ended"],
            icon="mdi:image-edit",
        ),
    ]
    if settings.mqtt.preview_interval_s > 0:
        configs.append(entity("camera", "live", "Live", topic=topics.preview))
    return configs


def removal_topics(settings: Settings, topics: Topics) -> list[str]:
    """Every config topic this agent may have published (the camera entity included)."""
    with_camera = settings.model_copy(
        update={"mqtt": settings.mqtt.model_copy(update={"preview_interval_s": 1.0})}
    )
    return [c.topic for c in discovery_configs(with_camera, topics)]
