"""JSON payloads of the MQTT contract (DESIGN section 4), and event ids. Pure.

Events: one JSON message per episode start and end on ``base/events``; each message has
its own id (sortable, unique, filename-safe), and an end event names the start event of
its episode in ``episode``. Consumers drop duplicates by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from scene_agent.ids import EVENT_ID_PATTERN, iso, new_event_id

if TYPE_CHECKING:  # a type only: payloads (and what imports them) do not load OpenCV
    from scene_agent.detector import Detection

__all__ = ["EVENT_ID_PATTERN", "AgentState", "event_payload", "iso", "new_event_id"]


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
    tamper_reason: str | None = None,
) -> dict[str, Any]:
    """A change event; with ``tamper_reason``, a tamper event (``tamper_started`` /
    ``tamper_ended`` with its ``reason``)."""
    topic = "change" if tamper_reason is None else "tamper"
    payload: dict[str, Any] = {
        "id": event_id,
        "camera": camera_id,
        "type": kind,
        "event_type": f"{topic}_started" if kind == "start" else f"{topic}_ended",
        "time": iso(when),
        "score": round(detection.score, 3),
        "mse": round(detection.mse, 3),
        "threshold": threshold,
        "changed_fraction": round(detection.changed_fraction, 5),
        "boxes": [list(box) for box in detection.boxes],
        "image": image,
        "episode": episode,
    }
    if tamper_reason is not None:
        payload["reason"] = tamper_reason
    if kind == "end":
        assert started_at is not None
        payload["started_at"] = iso(started_at)
        payload["duration_s"] = round((when - started_at).total_seconds(), 3)
        if peak_score is not None:
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
    tamper: str | None = None  # the active tamper condition's reason
    mode: str = "colour"  # the camera mode whose reference is in use
    references: tuple[str, ...] = ()  # camera modes that have a reference
    learning: bool = False  # a reference is being learned: frames are not judged

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
            "tamper": self.tamper,
            "mode": self.mode,
            "references": list(self.references),
            "learning": self.learning,
        }


def reply_payload(command: str, ok: bool, message: str, **extra: Any) -> dict[str, Any]:
    return {"command": command, "ok": ok, "message": message, **extra}


def on_off(value: bool) -> str:
    return "ON" if value else "OFF"
