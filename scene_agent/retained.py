"""What the agent publishes retained: one owner for every retained topic.

The agent says what each retained topic should hold (``want``); this keeps the latest
value of each and which of them the broker has not been sent yet (``due``). After a
reconnect everything is due again (the broker may have lost it); in between only what
changed is. Retained topics are never published from anywhere else.
"""

from __future__ import annotations


class RetainedState:
    def __init__(self) -> None:
        self._wanted: dict[str, bytes] = {}
        self._sent: dict[str, bytes] = {}

    def want(self, topic: str, payload: bytes | str) -> None:
        self._wanted[topic] = payload.encode() if isinstance(payload, str) else payload

    def due(self) -> list[tuple[str, bytes]]:
        """(topic, payload) for every retained topic the broker does not have as wanted."""
        return [(t, p) for t, p in self._wanted.items() if self._sent.get(t) != p]

    def sent(self, topic: str, payload: bytes) -> None:
        self._sent[topic] = payload

    def refresh(self, topic: str) -> None:
        """Send ``topic`` again even if unchanged (the periodic state refresh)."""
        self._sent.pop(topic, None)

    def reconnected(self) -> None:
        """A new connection: everything is sent again."""
        self._sent.clear()
