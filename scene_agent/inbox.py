"""The agent's inbox: where other threads (MQTT, camera, web) leave work for it.

No MQTT here: the web page and the tests use it without loading paho.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

COMMAND_QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    response_topic: str | None = None
    correlation_data: bytes | None = None
    # Set for commands from the web page: it also gets the reply (MQTT gets it too).
    reply_to: Callable[[dict[str, Any]], None] | None = None
    retained: bool = False  # delivered from the broker's store, not sent just now


@dataclass(frozen=True, slots=True)
class Connected:
    pass


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Delivered:
    mid: int


@dataclass(frozen=True, slots=True)
class CameraState:
    online: bool


Notice = Connected | Disconnected | Delivered | CameraState


class Inbox:
    """Where threads leave work for the agent thread.

    Commands go to a bounded queue (a flood is dropped, and counted, rather than growing
    memory without limit); connection, delivery and camera notices to their own queue,
    which is bounded by nature (one per packet in flight or per state change).
    """

    def __init__(self, command_limit: int = COMMAND_QUEUE_SIZE) -> None:
        self.commands: queue.Queue[Message] = queue.Queue(maxsize=command_limit)
        self.notices: queue.Queue[Notice] = queue.Queue()
        self.wakeup = threading.Event()
        self.dropped = 0

    def put_command(self, message: Message) -> None:
        try:
            self.commands.put_nowait(message)
        except queue.Full:
            self.dropped += 1
        self.wakeup.set()

    def put_notice(self, notice: Notice) -> None:
        self.notices.put_nowait(notice)
        self.wakeup.set()
