"""The outbox: events on their way to the broker, and what the store does when the disk
is full.

Every event is written to the event store first, sent, and marked delivered when the
broker acknowledges it (QoS 1); what was not acknowledged is sent again, oldest first,
after every reconnect. When the store cannot keep an event (a full disk, a broken
index), the event is kept in memory instead, flagged ``"stored": false``, until the
broker has it: an outage of the disk never silences the camera.

The outbox never publishes: the agent asks what is due and tells it what was sent and
what the broker acknowledged.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque
from datetime import datetime
from typing import Any

from scene_agent.errors import SceneAgentError
from scene_agent.store import EventStore

log = logging.getLogger(__name__)

STORAGE_ERRORS = (SceneAgentError, OSError, sqlite3.Error)
PENDING_BATCH = 50
UNSTORED_MAX = 200
STORAGE_LOG_INTERVAL_S = 60.0


class StorageHealth:
    """Says once that the storage fails, then once a minute at most, and when it works."""

    def __init__(self) -> None:
        self._failing_since: float | None = None
        self._logged_at = 0.0

    @property
    def failing(self) -> bool:
        return self._failing_since is not None

    def failed(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = self._logged_at = now
            log.error(
                "storage is failing (%s: %s): events are published unstored until it works again",
                what,
                exc,
            )
        elif now - self._logged_at >= STORAGE_LOG_INTERVAL_S:
            self._logged_at = now
            log.error("storage still failing (%s: %s)", what, exc)

    def works(self) -> None:
        if self._failing_since is not None:
            log.info("storage works again after %.0f s", time.monotonic() - self._failing_since)
            self._failing_since = None


class Outbox:
    """Owns the events in flight, their delivery marks, and re-sending."""

    def __init__(self, events: EventStore, health: StorageHealth) -> None:
        self.events = events
        self._health = health
        self._inflight: dict[int, str] = {}  # mid -> event id, awaiting the broker's ack
        self._unstored: deque[dict[str, Any]] = deque(maxlen=UNSTORED_MAX)
        self._unmarked: set[str] = set()  # acknowledged, but the mark could not be written
        self.stored = 0  # events in the store

    def open(self) -> None:
        self.events.open()
        self.stored = self.events.count()

    def close(self) -> None:
        self.events.close()

    def add(self, event_id: str, when: datetime, jpeg: bytes, payload: dict[str, Any]) -> bool:
        """Store an event, or keep it in memory when the store cannot; True if stored."""
        try:
            self.events.add(event_id, when, jpeg, payload)
            self.stored = self.events.count()  # retention may have removed some
        except STORAGE_ERRORS as exc:
            self._health.failed(f"event {event_id} not stored", exc)
            self._unstored.append({**payload, "image": None, "stored": False})
            return False
        self._health.works()
        return True

    def due(self) -> list[tuple[str, dict[str, Any]]]:
        """Events to send now, oldest first: the unstored ones, then the stored ones the
        broker has not acknowledged; none that is already in flight."""
        waiting = set(self._inflight.values())
        try:
            pending = self.events.pending(limit=PENDING_BATCH + len(waiting))
            stored = [(e.id, e.payload) for e in pending]
        except STORAGE_ERRORS as exc:
            self._health.failed("pending events not read", exc)
            stored = []
        unstored = [(str(p["id"]), p) for p in self._unstored]
        return [(i, p) for i, p in unstored + stored if i not in waiting]

    def sending(self, mid: int, event_id: str) -> None:
        self._inflight[mid] = event_id

    def acknowledged(self, mid: int) -> bool:
        """The broker has message ``mid``; True when nothing is in flight any more."""
        event_id = self._inflight.pop(mid, None)
        if event_id is None:
            return False
        for payload in self._unstored:
            if payload["id"] == event_id:
                self._unstored.remove(payload)
                return not self._inflight
        try:
            self.events.mark_delivered(event_id)
        except STORAGE_ERRORS as exc:
            # Sent again after the next reconnect unless marked by then: a duplicate,
            # which consumers drop by id, never a loss.
            self._health.failed("delivery not recorded", exc)
            self._unmarked.add(event_id)
        return not self._inflight

    def connection_changed(self) -> None:
        """Connected or disconnected: what was in flight is sent again."""
        self._inflight.clear()

    def retry_marks(self) -> None:
        for event_id in list(self._unmarked):
            try:
                self.events.mark_delivered(event_id)
            except STORAGE_ERRORS:
                return
            self._unmarked.discard(event_id)

    def deleted(self) -> None:
        """Events were deleted: forget those in flight, recount."""
        self._inflight = {m: i for m, i in self._inflight.items() if self.events.get(i)}
        self.stored = self.events.count()
