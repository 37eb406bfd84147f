"""JSON payloads of the MQTT contract (DESIGN section 4), and event ids. Pure.

Events: one JSON message per episode start and end on ``base/events``; each message has
its own id (sortable, unique, filename-safe), and an end event names the start event of
its episode in ``episode``. Consumers drop duplicates by id.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from scene_agent.detector import Detection

EVENT_ID_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{6}$")


def new_event_id(when: datetime) -> str:
    """Sortable, unique, filename-safe: ``20261126T081912345Z-a1b2c3``."""
    when = when.astimezone(UTC)
    return f"{when:%Y%m%dT%H%M%S}{when.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


def iso(when: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a ``Z``."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_payload(
    *,
    event_id: str,
    camera_id: str,
    kind: Literal["start", "end"],
    when: datetime,
    detection: Detection,
    threshold: float,
    image: str,
    episode: str,
    started_at: datetime | None = None,
    peak_score: float | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": event_id,
        "camera": camera_id,
        "type": kind,
        "event_type": "change_started" if kind == "start" else "change_ended",
        "time": iso(when),
        "score": round(detection.score, 3),
        "threshold": threshold,
        "changed_fraction": round(detection.changed_fraction, 5),
        "boxes": [list(box) for box in detection.boxes],
        "image": image,
        "episode": episode,
    }
    if kind == "end":
        assert started_at is not None and peak_score is not None
        payload["started_at"] = iso(started_at)
        payload["duration_s"] = round((when - started_at).total_seconds(), 3)
        payload["peak_score"] = round(peak_score, 3)
    return payload


@dataclass(frozen=True, slots=True)
class AgentState:
    """Everything ``base/state`` reports."""

    monitoring: bool
    camera_online: bool
    baseline_id: str | None
    baseline_taken_at: str | None
    score: float | None
    threshold: float
    change: bool
    events_stored: int
    fps: float
    version: str

    def as_json(self) -> dict[str, Any]:
        baseline = (
            None
            if self.baseline_id is None
            else {"id": self.baseline_id, "taken_at": self.baseline_taken_at}
        )
        return {
            "monitoring": self.monitoring,
            "camera": "online" if self.camera_online else "offline",
            "baseline": baseline,
            "score": None if self.score is None else round(self.score, 3),
            "threshold": self.threshold,
            "change": self.change,
            "events_stored": self.events_stored,
            "fps": round(self.fps, 2),
            "version": self.version,
        }


def reply_payload(command: str, ok: bool, message: str, **extra: Any) -> dict[str, Any]:
    return {"command": command, "ok": ok, "message": message, **extra}


def on_off(value: bool) -> str:
    return "ON" if value else "OFF"
