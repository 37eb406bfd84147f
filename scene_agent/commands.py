"""Parsing and validating command payloads (DESIGN section 4). Pure: no MQTT, no I/O.

A payload is empty, a plain word (``PRESS``, ``ON``, ``all``), a number where a number is
expected, or a JSON object. Anything else — invalid UTF-8, malformed JSON, more than
64 KiB, a wrong type, a value out of range, a path where an id belongs — raises
``CommandError`` with a message meant for the person who sent it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scene_agent import topics
from scene_agent.ids import EVENT_ID_PATTERN

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_SNAPSHOT_FRAMES = 300
MAX_SNAPSHOT_SECONDS = 60.0
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
MIN_THRESHOLD = 0.1
MAX_THRESHOLD = 65025.0
_ON = {"on", "true", "1", "yes"}
_OFF = {"off", "false", "0", "no"}


class CommandError(ValueError):
    """A command that cannot be carried out; the message says why."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Take a baseline from ``frames`` frames, or ``seconds`` of frames; neither: the
    learning window (``detector.learn_s``)."""

    frames: int | None = None
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class SetMonitoring:
    on: bool


@dataclass(frozen=True, slots=True)
class SetThreshold:
    value: float


@dataclass(frozen=True, slots=True)
class Delete:
    """Exactly one of: every event, one id, or everything before a time."""

    all: bool = False
    id: str | None = None
    before: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListEvents:
    limit: int = DEFAULT_LIST_LIMIT


Command = Snapshot | SetMonitoring | SetThreshold | Delete | ListEvents


def _text(payload: bytes) -> str:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError(f"payload too large: {len(payload)} bytes (at most {MAX_PAYLOAD_BYTES})")
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError("payload is not valid UTF-8") from None


def _json_object(text: str) -> dict[str, Any] | None:
    """The payload as a JSON object, or None if it is not JSON-object shaped."""
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CommandError(f"malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CommandError("JSON payload must be an object")
    return value


def _only_keys(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        shown = ", ".join(repr(k)[:40] for k in unknown[:5])
        raise CommandError(f"unknown key(s): {shown}; allowed: {', '.join(sorted(allowed))}")


def _int_in(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CommandError(f"{name} must be a whole number from {low} to {high}")
    try:
        number = float(value)
    except ValueError:
        raise CommandError(f"{name} must be a whole number from {low} to {high}") from None
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise CommandError(f"{name} must be a whole number from {low} to {high}, not {value!r:.40}")
    return int(number)


def _parse_snapshot(text: str) -> Snapshot:
    data = _json_object(text)
    if data is None:
        return Snapshot()  # empty, PRESS, or any plain word: the learning window
    _only_keys(data, {"frames", "seconds"})
    if len(data) > 1:
        raise CommandError('give "frames" or "seconds", not both')
    if "seconds" in data:
        return Snapshot(seconds=_seconds(data["seconds"]))
    if "frames" in data:
        return Snapshot(_int_in(data["frames"], "frames", 1, MAX_SNAPSHOT_FRAMES))
    return Snapshot()


def _seconds(value: Any) -> float:
    message = f"seconds must be a number above 0 and at most {MAX_SNAPSHOT_SECONDS:g}"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise CommandError(message)
    try:
        number = float(value)
    except ValueError:
        raise CommandError(f"{message}, not {value!r:.40}") from None
    if not math.isfinite(number) or not 0 < number <= MAX_SNAPSHOT_SECONDS:
        raise CommandError(f"{message}, not {value!r:.40}")
    return number


def _parse_monitoring(text: str) -> SetMonitoring:
    data = _json_object(text)
    word = text.lower()
    if data is not None:
        _only_keys(data, {"state"})
        word = str(data.get("state", "")).lower()
    if word in _ON:
        return SetMonitoring(True)
    if word in _OFF:
        return SetMonitoring(False)
    raise CommandError(f"monitoring must be ON or OFF, not {text!r:.40}")


def _parse_threshold(text: str) -> SetThreshold:
    data = _json_object(text)
    raw: Any = text
    if data is not None:
        _only_keys(data, {"value"})
        raw = data.get("value")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise CommandError("threshold must be a number")
    try:
        value = float(raw)
    except ValueError:
        raise CommandError(f"threshold must be a number, not {text!r:.40}") from None
    if not math.isfinite(value) or not MIN_THRESHOLD <= value <= MAX_THRESHOLD:
        raise CommandError(
            f"threshold must be from {MIN_THRESHOLD:g} to {MAX_THRESHOLD:g}, not {raw!r:.40}"
        )
    return SetThreshold(value)


def _parse_event_id(value: Any) -> str:
    if not isinstance(value, str) or not EVENT_ID_PATTERN.fullmatch(value):
        raise CommandError(
            f"not an event id: {value!r:.60} (ids look like 20261126T081912345Z-a1b2c3)"
        )
    return value


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise CommandError("before must be an ISO-8601 time, e.g. 2026-11-26T08:00:00Z")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"before is not an ISO-8601 time: {value!r:.60}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _parse_delete(text: str) -> Delete:
    data = _json_object(text)
    if data is None:
        if text.lower() in ("", "all", "press"):
            return Delete(all=True)
        raise CommandError(
            'delete takes nothing, "all", or JSON {"id": ...} or {"before": ...}; '
            f"got {text!r:.40}"
        )
    _only_keys(data, {"id", "before", "all"})
    if len(data) != 1:
        raise CommandError('give exactly one of "id", "before" or "all"')
    if "id" in data:
        return Delete(id=_parse_event_id(data["id"]))
    if "before" in data:
        return Delete(before=_parse_time(data["before"]))
    if data["all"] is not True:
        raise CommandError('"all" must be true')
    return Delete(all=True)


def _parse_list(text: str) -> ListEvents:
    data = _json_object(text)
    if data is None:
        if not text or text.lower() == "press":
            return ListEvents()
        return ListEvents(_int_in(text, "limit", 1, MAX_LIST_LIMIT))
    _only_keys(data, {"limit"})
    return ListEvents(_int_in(data.get("limit", DEFAULT_LIST_LIMIT), "limit", 1, MAX_LIST_LIMIT))


def _parse_start(text: str) -> SetMonitoring:
    _json_object(text)  # any payload, but JSON that is there must be well formed
    return SetMonitoring(True)


def _parse_stop(text: str) -> SetMonitoring:
    _json_object(text)
    return SetMonitoring(False)


_PARSERS: dict[str, Callable[[str], Command]] = {
    topics.CMD_SNAPSHOT: _parse_snapshot,
    topics.CMD_START: _parse_start,
    topics.CMD_STOP: _parse_stop,
    topics.CMD_DELETE: _parse_delete,
    topics.CMD_LIST: _parse_list,
    topics.MONITORING_SET: _parse_monitoring,
    topics.THRESHOLD_SET: _parse_threshold,
}


def parse_command(name: str, payload: bytes) -> Command:
    """Turn a command topic name (below ``base``) and its payload into a Command."""
    parser = _PARSERS.get(name)
    if parser is None:
        raise CommandError(f"unknown command {name[:60]!r}; known: {', '.join(topics.COMMANDS)}")
    return parser(_text(payload))
