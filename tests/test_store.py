"""Stores: atomic writes, the event index, retention, and deletes that stay inside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scene_agent.config import StorageSettings
from scene_agent.errors import UnsafePathError
from scene_agent.payloads import EVENT_ID_PATTERN, new_event_id
from scene_agent.statefiles import BaselineInfo, BaselineStore, RuntimeState, RuntimeStore
from scene_agent.store import EventStore, atomic_write, inside

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def add(store: EventStore, when: datetime, size: int = 1000) -> str:
    event_id = new_event_id(when)
    store.add(event_id, when, b"\xff\xd8" + b"x" * (size - 2), {"id": event_id, "type": "start"})
    return event_id


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    s = EventStore(tmp_path / "data", StorageSettings(data_dir=tmp_path / "data"))
    s.open()
    return s


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "f.bin"
    atomic_write(target, b"old")
    atomic_write(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]


def test_atomic_write_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write(target, b"old")

    class Boom:
        def __bytes__(self) -> bytes:
            raise RuntimeError("disk on fire")

    with pytest.raises(TypeError):
        atomic_write(target, Boom())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_event_ids_are_unique_sortable_and_safe() -> None:
    ids = [new_event_id(T0 + timedelta(milliseconds=i)) for i in range(50)]
    assert len(set(ids)) == 50
    assert [i[:19] for i in ids] == sorted(i[:19] for i in ids)
    assert all(EVENT_ID_PATTERN.match(i) for i in ids)


def test_add_writes_dated_image_and_index(store: EventStore, tmp_path: Path) -> None:
    event_id = add(store, T0)
    stored = store.get(event_id)
    assert stored is not None
    assert stored.image == f"events/2026-11-20/{event_id}.jpg"
    assert store.image_path(stored).read_bytes().startswith(b"\xff\xd8")
    assert stored.payload == {"id": event_id, "type": "start"}
    assert not stored.delivered
    assert store.count() == 1


def test_pending_and_delivery(store: EventStore) -> None:
    ids = [add(store, T0 + timedelta(seconds=i)) for i in range(3)]
    assert [e.id for e in store.pending()] == ids
    store.mark_delivered(ids[1])
    assert [e.id for e in store.pending()] == [ids[0], ids[2]]


def test_index_survives_reopen(tmp_path: Path) -> None:
    settings = StorageSettings(data_dir=tmp_path)
    with EventStore(tmp_path, settings) as s:
        event_id = add(s, T0)
    with EventStore(tmp_path, settings) as s:
        assert [e.id for e in s.recent()] == [event_id]


def test_recent_is_newest_first_and_paged(store: EventStore) -> None:
    ids = [add(store, T0 + timedelta(seconds=i)) for i in range(5)]
    assert [e.id for e in store.recent(limit=2)] == ids[::-1][:2]
    assert [e.id for e in store.recent(limit=2, offset=2)] == ids[::-1][2:4]


def test_retention_by_count(tmp_path: Path) -> None:
    with EventStore(tmp_path, StorageSettings(data_dir=tmp_path, max_events=3)) as s:
        ids = [add(s, datetime.now(UTC) - timedelta(seconds=10 - i)) for i in range(5)]
        assert [e.id for e in s.recent()] == ids[:1:-1]
        assert len(list((tmp_path / "events").rglob("*.jpg"))) == 3


def test_retention_by_age(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with EventStore(tmp_path, StorageSettings(data_dir=tmp_path, max_age_days=1)) as s:
        old = add(s, now - timedelta(days=3))
        assert s.get(old) is None  # removed as soon as it was added: too old
        recent = add(s, now - timedelta(hours=1))
        assert s.get(recent) is not None
        assert s.apply_retention(now + timedelta(days=2)) == 1
        assert s.count() == 0
        assert not (tmp_path / "events").exists() or not any((tmp_path / "events").rglob("*.jpg"))


def test_retention_by_bytes_removes_oldest_first(tmp_path: Path) -> None:
    settings = StorageSettings(data_dir=tmp_path, max_mb=1)  # images and index together
    now = datetime.now(UTC)
    with EventStore(tmp_path, settings) as s:
        ids = [add(s, now - timedelta(seconds=20 - i), size=200_000) for i in range(8)]
        assert s.total_bytes() <= 1 << 20
        kept = [e.id for e in s.recent()]
        assert kept == ids[::-1][: len(kept)] and 3 <= len(kept) <= 5


def test_retention_counts_the_index_and_bounds_its_wal(tmp_path: Path) -> None:
    # Many small events: the index and its WAL are a real share of storage.max_mb.
    settings = StorageSettings(data_dir=tmp_path, max_mb=2)
    now = datetime.now(UTC)
    with EventStore(tmp_path, settings) as s:
        for i in range(1500):
            add(s, now - timedelta(seconds=2000 - i), size=2000)
        on_disk = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
        wal = (tmp_path / "events.db-wal").stat().st_size
    assert on_disk <= 2 * (1 << 20) + 64 * 1024, on_disk  # what the directory really holds
    assert wal <= (1 << 20) + 64 * 1024, wal


def test_opening_sweeps_what_a_crash_left(tmp_path: Path) -> None:
    settings = StorageSettings(data_dir=tmp_path)
    when = datetime.now(UTC)
    with EventStore(tmp_path, settings) as s:
        kept = add(s, when)
    day = tmp_path / EventStore.image_relative(kept, when)
    orphan = day.parent / f"{new_event_id(when)}.jpg"  # image written, index row never
    orphan.write_bytes(b"\xff\xd8orphan")
    half = day.parent / ".x.jpg.abc123.tmp"  # an interrupted atomic write
    half.write_bytes(b"half")
    baseline_half = tmp_path / ".baseline.jpg.q1w2e3.tmp"
    baseline_half.write_bytes(b"half")
    other = tmp_path / "notes.txt"  # not ours to judge: left alone
    other.write_text("keep")
    with EventStore(tmp_path, settings) as s:
        assert [e.id for e in s.recent()] == [kept]
    assert day.exists() and other.exists()
    assert not orphan.exists() and not half.exists() and not baseline_half.exists()


def test_delete_by_id_before_and_all(store: EventStore, tmp_path: Path) -> None:
    ids = [add(store, T0 + timedelta(days=i)) for i in range(4)]
    assert store.delete(ids[0]) == 1
    assert store.delete(ids[0]) == 0  # unknown now
    assert store.delete_before(T0 + timedelta(days=2)) == 1
    assert [e.id for e in store.recent()] == [ids[3], ids[2]]
    assert store.delete_all() == 2
    assert store.count() == 0
    assert not list((tmp_path / "data" / "events").rglob("*.jpg"))


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", "/etc/passwd", "..", "", "x" * 500, "20261126T081912345Z-a1b2c3/../../x"],
)
def test_delete_refuses_ids_that_are_not_event_ids(store: EventStore, bad: str) -> None:
    with pytest.raises(UnsafePathError):
        store.delete(bad)


def test_delete_only_touches_files_the_index_knows(store: EventStore, tmp_path: Path) -> None:
    data = tmp_path / "data"
    keep = data / "events" / "2026-11-20" / "not-indexed.jpg"
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.write_bytes(b"user file")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"precious")
    baseline = BaselineStore(data)
    baseline.save(b"\xff\xd8base", BaselineInfo("b1", "2026-11-20T12:00:00Z", 1, 4, 3))
    add(store, T0)
    # A tampered index row pointing outside must not lead to a delete.
    store.db.execute(
        "INSERT INTO events (id, ts, image, bytes, payload) VALUES (?, ?, ?, ?, ?)",
        ("20261120T120000000Z-aaaaaa", T0.timestamp(), "../outside.jpg", 8, "{}"),
    )
    store.db.execute(
        "INSERT INTO events (id, ts, image, bytes, payload) VALUES (?, ?, ?, ?, ?)",
        ("20261120T120000000Z-bbbbbb", T0.timestamp(), "baseline.jpg", 8, "{}"),
    )
    store.delete_all()
    assert keep.read_bytes() == b"user file"
    assert outside.read_bytes() == b"precious"
    assert baseline.load() is not None


def test_inside_rejects_escapes(tmp_path: Path) -> None:
    assert inside(tmp_path, "events/x.jpg") == (tmp_path / "events/x.jpg").resolve()
    for bad in ["../x", "/etc/passwd", "events/../../x", "."]:
        with pytest.raises(UnsafePathError):
            inside(tmp_path, bad)


def test_symlink_out_of_the_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "data" / "events").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError):
        inside(tmp_path / "data", "events/x.jpg")


def test_baseline_roundtrip_and_bad_files(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    assert store.load() is None
    info = BaselineInfo("abc", "2026-11-20T12:00:00.000Z", 5, 640, 360)
    store.save(b"\xff\xd8jpeg", info)
    assert store.load() == (b"\xff\xd8jpeg", info)
    (tmp_path / "baseline.json").write_text("{not json")
    assert store.load() is None


def test_runtime_state_keeps_the_last_change_across_a_restart(tmp_path: Path) -> None:
    store = RuntimeStore(tmp_path)
    store.save(RuntimeState(False, 33.0, last_change="2026-11-30T08:00:00.000Z"))
    assert RuntimeStore(tmp_path).load() == RuntimeState(False, 33.0, "2026-11-30T08:00:00.000Z")
    store.save(RuntimeState(True, 12.0))
    assert RuntimeStore(tmp_path).load() == RuntimeState(True, 12.0, None)
    for bad in (
        '{"monitoring": true, "threshold": 12, "last_change": "not a time"}',
        '{"monitoring": "yes", "threshold": 12}',
        '{"monitoring": true, "threshold": 0}',
        '{"monitoring": true}',
        "[1, 2]",
        "{not json",
    ):
        (tmp_path / "runtime.json").write_text(bad)
        assert RuntimeStore(tmp_path).load() is None, bad  # refused whole: the settings apply
