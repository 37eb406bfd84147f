"""The agent's heartbeat file, and the health check that reads it (for Docker).

Imports nothing heavy: ``scene-agent healthcheck`` runs every 30 s in the container.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from scene_agent.store import atomic_write

HEARTBEAT_FILE = "heartbeat"
HEARTBEAT_MAX_AGE_S = 30.0
HEARTBEAT_WIDTH = 64


def write_heartbeat(path: Path) -> None:
    """Rewritten in place at a fixed width: that needs no new disk space, so a full disk
    does not make a live agent look dead to its health check."""
    beat = json.dumps({"pid": os.getpid(), "time": time.time()}).encode()
    beat = beat.ljust(HEARTBEAT_WIDTH)
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        atomic_write(path, beat)
        return
    try:
        if os.fstat(fd).st_size != len(beat):
            os.ftruncate(fd, len(beat))
        os.pwrite(fd, beat, 0)
    finally:
        os.close(fd)


def read_heartbeat(data_dir: Path, max_age_s: float = HEARTBEAT_MAX_AGE_S) -> str | None:
    """None when the agent loop is alive; otherwise why not (for ``healthcheck``)."""
    path = data_dir / HEARTBEAT_FILE
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
        pid, stamp = int(beat["pid"]), float(beat["time"])
    except FileNotFoundError:
        return f"no heartbeat in {data_dir}: the agent is not running"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable heartbeat: {exc}"
    age = time.time() - stamp
    if age > max_age_s:
        return f"heartbeat is {age:.0f} s old: the agent loop is stuck or gone"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"agent process {pid} is gone"
    except PermissionError:
        pass  # exists, owned by someone else
    return None
