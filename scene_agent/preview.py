"""The live view's encoder: one thread turns the newest camera frame into a JPEG at most
``preview_fps`` times a second, only while someone watches, and every viewer gets the
same bytes as an MJPEG (``multipart/x-mixed-replace``) stream. Viewers are capped.

No web framework here: the page serves ``PreviewHub.stream()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from scene_agent.camera import LatestFrame
from scene_agent.labels import encode_jpeg

log = logging.getLogger(__name__)

BOUNDARY = "scene-agent-frame"


class PreviewHub:
    """Encodes live frames once, at most at the preview rate, for all viewers."""

    def __init__(self, latest: LatestFrame, fps: float, quality: int, max_viewers: int) -> None:
        self._latest = latest
        self._interval = 1.0 / fps
        self._quality = quality
        self._max_viewers = max_viewers
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._viewers = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.encoded = 0  # frames encoded so far (for tests and benchmarks)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="web-preview", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(2)

    def _run(self) -> None:
        last_frame = 0
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._viewers > 0 or self._stop.is_set())
            if self._stop.is_set():
                return
            frame = self._latest.wait_newer(last_frame, timeout=1.0)
            if frame is None:
                continue
            last_frame = frame.seq
            try:
                jpeg = encode_jpeg(frame.image, self._quality)
            except ValueError:
                continue
            with self._cond:
                self._jpeg = jpeg
                self._seq += 1
                self.encoded += 1
                self._cond.notify_all()
            self._stop.wait(self._interval)

    def join(self) -> bool:
        """Register a viewer; False when the cap is reached."""
        with self._cond:
            if self._viewers >= self._max_viewers:
                return False
            self._viewers += 1
            self._cond.notify_all()
            return True

    def leave(self) -> None:
        with self._cond:
            self._viewers -= 1

    @property
    def viewers(self) -> int:
        with self._cond:
            return self._viewers

    def next_jpeg(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._stop.is_set(), timeout=timeout)
            if self._seq > after and self._jpeg is not None:
                return self._seq, self._jpeg
            return None

    def stream(self) -> Iterator[bytes]:
        """The multipart body for one viewer (who has already joined)."""
        try:
            seq = 0
            while not self._stop.is_set():
                got = self.next_jpeg(seq, timeout=5.0)
                if got is None:
                    continue
                seq, jpeg = got
                yield (
                    (
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n"
                    ).encode()
                    + jpeg
                    + b"\r\n"
                )
        finally:
            self.leave()
