"""Event ids and times as the MQTT contract writes them. Pure, and light: no OpenCV.

Each message has its own id (sortable, unique, filename-safe).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

EVENT_ID_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{6}$")


def new_event_id(when: datetime) -> str:
    """Sortable, unique, filename-safe: ``20261126T081912345Z-a1b2c3``."""
    when = when.astimezone(UTC)
    return f"{when:%Y%m%dT%H%M%S}{when.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


def iso(when: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a ``Z``."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
