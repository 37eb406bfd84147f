"""The outbox on a real event store, and on one whose disk is full."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scene_agent.config import StorageSettings
from scene_agent.ids import new_event_id
from scene_agent.outbox import Outbox, StorageHealth
from scene_agent.store import EventStore


class FullDisk(EventStore):
    """The real store, except that writes fail as SQLite fails on a full disk."""

    full = True

    def add(self, event_id: str, when: datetime, jpeg: bytes, payload: dict[str, Any]) -> str:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        return super().add(event_id, when, jpeg, payload)

    def mark_delivered(self, event_id: str) -> None:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        super().mark_delivered(event_id)


def event(when: datetime) -> tuple[str, dict[str, Any]]:
    event_id = new_event_id(when)
    return event_id, {"id": event_id, "type": "start", "image": "events/x.jpg"}


def test_stored_events_are_due_until_acknowledged(tmp_path: Path) -> None:
    outbox = Outbox(EventStore(tmp_path, StorageSettings(data_dir=tmp_path)), StorageHealth())
    outbox.open()
    now = datetime.now(UTC)
    a, b = event(now), event(now)
    assert outbox.add(a[0], now, b"\xff\xd8a", a[1]) and outbox.add(b[0], now, b"\xff\xd8b", b[1])
    assert [i for i, _ in outbox.due()] == [a[0], b[0]]
    outbox.sending(1, a[0])
    assert [i for i, _ in outbox.due()] == [b[0]]  # a is in flight
    outbox.sending(2, b[0])
    assert outbox.acknowledged(1) is False  # b is still in flight
    outbox.connection_changed()  # b was not acknowledged: due again
    assert [i for i, _ in outbox.due()] == [b[0]]
    outbox.close()


def test_a_full_disk_keeps_events_in_memory_and_marks_later(tmp_path: Path) -> None:
    store = FullDisk(tmp_path, StorageSettings(data_dir=tmp_path))
    health = StorageHealth()
    outbox = Outbox(store, health)
    outbox.open()
    now = datetime.now(UTC)
    lost = event(now)
    assert outbox.add(lost[0], now, b"\xff\xd8", lost[1]) is False
    assert health.failing
    [(event_id, payload)] = outbox.due()
    assert event_id == lost[0] and payload["stored"] is False and payload["image"] is None
    outbox.sending(7, event_id)
    assert outbox.acknowledged(7) is True
    assert outbox.due() == []  # acknowledged: gone from memory
    # Space again: stored, and an acknowledgement that could not be marked is retried.
    store.full = False
    kept = event(now)
    assert outbox.add(kept[0], now, b"\xff\xd8", kept[1]) is True
    assert not health.failing
    store.full = True
    outbox.sending(8, kept[0])
    outbox.acknowledged(8)
    store.full = False
    outbox.retry_marks()
    assert outbox.due() == []
    outbox.close()
