"""The data directory: the baseline, event images and their SQLite index (DESIGN section 5).

Layout under ``storage.data_dir``::

    events/YYYY-MM-DD/<id>.jpg      labelled event frames
    events.db                       SQLite (WAL) index; also records undelivered events

(``baseline.*`` and ``runtime.json``: see ``statefiles``.)

Every file is written atomically (temporary file + rename). Deletion only touches files
the index knows, and only inside the data directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scene_agent.config import StorageSettings
from scene_agent.errors import StoreError, UnsafePathError
from scene_agent.ids import EVENT_ID_PATTERN

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    id        TEXT NOT NULL UNIQUE,
    ts        REAL NOT NULL,
    image     TEXT NOT NULL,
    bytes     INTEGER NOT NULL,
    payload   TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_pending ON events (delivered, seq);
"""


INDEX_FILES = ("events.db", "events.db-wal", "events.db-shm")
WAL_LIMIT_BYTES = 1 << 20
AUTOCHECKPOINT_PAGES = 100  # of 4 KiB: the WAL is checkpointed at about 400 KiB


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise


def inside(root: Path, relative: str | Path) -> Path:
    """Resolve ``relative`` under ``root``; raise UnsafePathError if it would leave it."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or candidate == root:
        raise UnsafePathError(f"path {str(relative)!r} is outside the data directory")
    return candidate


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: str
    time: datetime
    image: str  # relative to the data directory
    bytes: int
    payload: dict[str, Any]
    delivered: bool


class EventStore:
    """Event images plus their SQLite index. One instance per thread (SQLite connection)."""

    def __init__(self, data_dir: Path, settings: StorageSettings) -> None:
        self._root = data_dir
        self._settings = settings
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._root / "events.db", isolation_level=None, timeout=10)
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new index only
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # The WAL counts against storage.max_mb like everything else: keep it small.
            db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the event index in {self._root}: {exc}") from exc
        self._db = db
        swept = self.sweep()
        if swept:
            log.info("removed %d leftover file(s) of an interrupted run", swept)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> EventStore:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("event store is not open")
        return self._db

    # --- writing -----------------------------------------------------------------------

    @staticmethod
    def image_relative(event_id: str, when: datetime) -> str:
        """Where an event's image is stored, relative to the data directory."""
        return f"events/{when.astimezone(UTC):%Y-%m-%d}/{event_id}.jpg"

    def add(self, event_id: str, when: datetime, jpeg: bytes, payload: dict[str, Any]) -> str:
        """Store the image and index it; returns the image path relative to the data dir."""
        if not EVENT_ID_PATTERN.match(event_id):
            raise StoreError(f"malformed event id {event_id!r}")
        relative = self.image_relative(event_id, when)
        path = inside(self._root, relative)
        atomic_write(path, jpeg)
        try:
            self.db.execute(
                "INSERT INTO events (id, ts, image, bytes, payload) VALUES (?, ?, ?, ?, ?)",
                (event_id, when.timestamp(), relative, len(jpeg), json.dumps(payload)),
            )
        except sqlite3.Error as exc:
            path.unlink(missing_ok=True)
            raise StoreError(f"cannot index event {event_id}: {exc}") from exc
        self.apply_retention()
        return relative

    def mark_delivered(self, event_id: str) -> None:
        self.db.execute("UPDATE events SET delivered = 1 WHERE id = ?", (event_id,))

    # --- reading -----------------------------------------------------------------------

    def pending(self, limit: int = 100) -> list[StoredEvent]:
        """Events not yet acknowledged by the broker, oldest first."""
        rows = self.db.execute(
            "SELECT id, ts, image, bytes, payload, delivered FROM events "
            "WHERE delivered = 0 ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [_row(r) for r in rows]

    def recent(self, limit: int = 50, offset: int = 0) -> list[StoredEvent]:
        """Stored events, newest first."""
        rows = self.db.execute(
            "SELECT id, ts, image, bytes, payload, delivered FROM events "
            "ORDER BY seq DESC LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        return [_row(r) for r in rows]

    def get(self, event_id: str) -> StoredEvent | None:
        row = self.db.execute(
            "SELECT id, ts, image, bytes, payload, delivered FROM events WHERE id = ?",
            (event_id,),
        ).fetchone()
        return _row(row) if row else None

    def image_path(self, event: StoredEvent) -> Path:
        return inside(self._root, event.image)

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def total_bytes(self) -> int:
        """What the events take on disk: their images and the index with its WAL."""
        images = int(self.db.execute("SELECT COALESCE(SUM(bytes), 0) FROM events").fetchone()[0])
        return images + self.index_bytes()

    def index_bytes(self) -> int:
        total = 0
        for name in INDEX_FILES:
            with contextlib.suppress(FileNotFoundError):
                total += (self._root / name).stat().st_size
        return total

    def sweep(self) -> int:
        """Remove what a crash can leave: temporary files of interrupted writes, and event
        images the index does not know (written, then killed before the index row)."""
        known = {row[0] for row in self.db.execute("SELECT image FROM events")}
        removed = 0
        for folder, _dirs, files in os.walk(self._root):  # does not follow links
            for name in files:
                path = Path(folder) / name
                relative = path.relative_to(self._root).as_posix()
                orphan = relative.startswith("events/") and name.endswith(".jpg")
                leftover = name.startswith(".") and name.endswith(".tmp")
                if (leftover or (orphan and relative not in known)) and not path.is_symlink():
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                        removed += 1
        return removed

    # --- deleting ----------------------------------------------------------------------

    def delete(self, event_id: str) -> int:
        """Delete one event by id; 0 if the index does not know it."""
        if not EVENT_ID_PATTERN.match(event_id):
            raise UnsafePathError(f"not an event id: {event_id!r}")
        return self._delete_where("id = ?", (event_id,))

    def delete_before(self, when: datetime) -> int:
        return self._delete_where("ts < ?", (when.timestamp(),))

    def delete_all(self) -> int:
        return self._delete_where("1 = 1", ())

    def apply_retention(self, now: datetime | None = None) -> int:
        """Drop the oldest events beyond the age, count and size limits; returns how many."""
        s = self._settings
        now = now or datetime.now(UTC)
        removed = self.delete_before(now - timedelta(days=s.max_age_days))
        excess = self.count() - s.max_events
        if excess > 0:
            removed += self._delete_where(
                "seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)", (excess,)
            )
        budget = int(s.max_mb * 1024 * 1024)
        total = self.total_bytes()
        if total > budget:
            # The oldest rows whose sizes add up to at least the overshoot.
            rows = self.db.execute("SELECT seq, bytes FROM events ORDER BY seq").fetchall()
            over, last_seq = total - budget, None
            for seq, size in rows:
                over -= size
                last_seq = seq
                if over <= 0:
                    break
            removed += self._delete_where("seq <= ?", (last_seq,))
        if removed:
            log.info("retention removed %d stored event(s)", removed)
            # Give the space back: the WAL truncated, freed pages returned to the disk.
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.execute("PRAGMA incremental_vacuum")
        return removed

    def _delete_where(self, where: str, args: tuple[Any, ...]) -> int:
        db = self.db
        rows = db.execute(f"SELECT seq, image FROM events WHERE {where}", args).fetchall()  # noqa: S608 - fixed clauses only
        removed = 0
        for seq, image in rows:
            try:
                path = inside(self._root, image)
            except UnsafePathError:
                log.exception(
                    "index entry %d points outside the data directory; not deleting it", seq
                )
                continue
            if path.suffix != ".jpg" or not path.is_relative_to(self._root.resolve() / "events"):
                log.error("index entry %d is not an event image; not deleting it", seq)
                continue
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only succeeds once the day's folder is empty
            db.execute("DELETE FROM events WHERE seq = ?", (seq,))
            removed += 1
        return removed


def _row(row: tuple[Any, ...]) -> StoredEvent:
    event_id, ts, image, size, payload, delivered = row
    return StoredEvent(
        id=event_id,
        time=datetime.fromtimestamp(ts, UTC),
        image=image,
        bytes=int(size),
        payload=json.loads(payload),
        delivered=bool(delivered),
    )
