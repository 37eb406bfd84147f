"""Camera sources and the capture thread.

A source is a USB index (``0``), an RTSP/HTTP(S) URL, a video file, or an image sequence
pattern (``frames/in%06d.jpg``). ``open_source`` gives a ``FrameReader`` for any of them;
replay reads it directly, the live agent through ``Camera``, whose thread keeps only the
newest frame (no stale RTSP buffer) and reopens the source with tenacity backoff.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2

from scene_agent.demo import DemoReader
from scene_agent.detector import Image
from scene_agent.errors import SourceError
from scene_agent.retry import backoff

log = logging.getLogger(__name__)

# FFmpeg and OpenCV print lines of their own on every failed (re)open ("Stream ends
# prematurely", "can't be used to capture by name"), straight to stderr and on every
# retry. The camera reports its outages itself, through the log. Setting either
# variable keeps their own output for debugging.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read at each open
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

DEMO_SOURCE = "demo"  # the built-in generated scene
_URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
_SEQUENCE = re.compile(r"%0?(\d*)d")
_STREAM_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class Source:
    kind: Literal["usb", "url", "file", "sequence", "demo"]
    target: str
    loop: bool = False

    def describe(self) -> str:
        """The source as it may be logged: credentials in a URL are masked."""
        return redact_url(self.target) if self.kind == "url" else self.target

    @property
    def is_live(self) -> bool:
        return self.kind in ("usb", "url")


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"***:***@{host}"))


def parse_source(text: str, loop: bool = False) -> Source:
    text = text.strip()
    if not text:
        raise SourceError("camera source is empty")
    if text.isdigit():
        return Source("usb", text)
    if text == DEMO_SOURCE:
        return Source("demo", text, loop)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme:
        if scheme not in _URL_SCHEMES:
            raise SourceError(
                f"camera source scheme {scheme!r} is not supported (use {', '.join(_URL_SCHEMES)})"
            )
        return Source("url", text)
    if _SEQUENCE.search(text):
        return Source("sequence", text, loop)
    return Source("file", text, loop)


class FrameReader(Protocol):
    fps: float | None  # the source's own rate, when it says
    frame_count: int | None

    def read(self) -> Image | None:
        """The next frame, or None at the end of a file or on a read failure."""
        ...

    def close(self) -> None: ...


class CaptureReader:
    """Frames from OpenCV's VideoCapture (files, streams, USB cameras)."""

    def __init__(self, capture: cv2.VideoCapture) -> None:
        self._capture = capture
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0)
        self.fps: float | None = fps if 0 < fps < 1000 else None
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: int | None = count if count > 0 else None

    def read(self) -> Image | None:
        ok, frame = self._capture.read()
        return frame if ok and frame is not None else None

    def close(self) -> None:
        self._capture.release()


class SequenceReader:
    """Frames from numbered image files, in numeric order (any first number)."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths
        self._next = 0
        self.fps: float | None = None
        self.frame_count: int | None = len(paths)

    def read(self) -> Image | None:
        while self._next < len(self._paths):
            path = self._paths[self._next]
            self._next += 1
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is not None:
                return frame
            log.warning("skipping unreadable image %s", path)
        return None

    def close(self) -> None:
        self._next = len(self._paths)


def sequence_paths(pattern: str) -> list[Path]:
    """Files matching a printf-style pattern (``in%06d.jpg``), sorted by their number."""
    match = _SEQUENCE.search(pattern)
    if match is None:
        raise SourceError(f"{pattern!r} is not an image sequence pattern")
    path = Path(pattern)
    folder = path.parent
    name = path.name
    name_match = _SEQUENCE.search(name)
    if name_match is None:
        raise SourceError(
            f"image sequence pattern {pattern!r}: the number must be in the file name"
        )
    width = name_match.group(1)
    digits = rf"\d{{{int(width)}}}" if width else r"\d+"
    regex = re.compile(
        re.escape(name[: name_match.start()]) + f"({digits})" + re.escape(name[name_match.end() :])
    )
    if not folder.is_dir():
        raise SourceError(f"image sequence {pattern!r}: folder {folder} not found")
    found = []
    for entry in folder.iterdir():
        m = regex.fullmatch(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), entry))
    if not found:
        raise SourceError(f"image sequence {pattern!r}: no file matches")
    return [p for _, p in sorted(found)]


def open_source(source: Source) -> FrameReader:
    """Open a source and check that it yields frames; raise SourceError if not."""
    if source.kind == "sequence":
        return SequenceReader(sequence_paths(source.target))
    if source.kind == "demo":
        return DemoReader()
    if source.kind == "file":
        path = Path(source.target)
        if not path.exists():
            raise SourceError(f"video file {source.target}: not found")
        if not path.is_file():
            raise SourceError(f"video file {source.target}: not a file")
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture = cv2.VideoCapture(str(path))  # still images and other backends
    elif source.kind == "url":
        capture = cv2.VideoCapture(
            source.target,
            cv2.CAP_FFMPEG,
            [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                _STREAM_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                _STREAM_TIMEOUT_MS,
            ],
        )
    else:
        capture = cv2.VideoCapture(int(source.target))
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"cannot open camera source {source.describe()}")
    return CaptureReader(capture)


# --- the capture thread --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int  # increases by one per frame read
    image: Image
    monotonic: float  # when it was read


class LatestFrame:
    """A one-frame slot: the writer replaces, readers wait for something newer."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None

    def put(self, image: Image) -> None:
        with self._cond:
            seq = self._frame.seq + 1 if self._frame else 1
            self._frame = Frame(seq, image, time.monotonic())
            self._cond.notify_all()

    def get(self) -> Frame | None:
        with self._cond:
            return self._frame

    def wait_newer(self, seq: int, timeout: float) -> Frame | None:
        """The newest frame if its seq is above ``seq``, waiting up to ``timeout`` s."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._frame is not None and self._frame.seq > seq, timeout=timeout
            )
            frame = self._frame
        return frame if frame is not None and frame.seq > seq else None


class Camera:
    """Owns the source in its own thread; reports online/offline through ``on_state``."""

    def __init__(
        self,
        source: Source,
        on_state: Callable[[bool], None] | None = None,
        max_backoff_s: float = 30.0,
        opener: Callable[[Source], FrameReader] = open_source,
    ) -> None:
        self.source = source
        self.latest = LatestFrame()
        self._on_state = on_state
        self._max_backoff_s = max_backoff_s
        self._opener = opener
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._online = False
        self.ended = threading.Event()  # a non-looping file has no more frames

    @property
    def online(self) -> bool:
        return self._online

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("camera already started")
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _set_online(self, online: bool) -> None:
        if online == self._online:
            return
        self._online = online
        log.info("camera %s is %s", self.source.describe(), "online" if online else "offline")
        if self._on_state is not None:
            try:
                self._on_state(online)
            except Exception:
                log.exception("camera state callback failed")

    def _open_first(self, source: Source) -> tuple[FrameReader, Image]:
        """Open the source and read one frame: a source that opens but yields nothing fails."""
        reader = self._opener(source)
        image = reader.read()
        if image is None:
            reader.close()
            raise SourceError(f"camera source {source.describe()} gives no frame")
        return reader, image

    def _open_with_retries(self) -> tuple[FrameReader, Image] | None:
        retrying = backoff(
            self._stop,
            SourceError,
            first_s=0.5,
            max_s=self._max_backoff_s,
            describe=lambda exc, wait: f"camera: {exc}; retrying in {wait:.1f} s",
            log=log,
        )
        opened: tuple[FrameReader, Image] | None = retrying(self._open_first, self.source)
        return opened

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                opened = self._open_with_retries()
                if opened is None:
                    break
                reader, first = opened
                try:
                    outcome = self._pump(reader, first)
                finally:
                    reader.close()
                if outcome == "ended":
                    self._set_online(False)
                    self.ended.set()
                    log.info("camera source %s has ended", self.source.describe())
                    break
                if outcome == "failed":
                    self._set_online(False)
                # "loop": reopened from the start at once, still online
        except Exception:
            log.exception("capture thread failed")
            self._set_online(False)

    def _pump(self, reader: FrameReader, first: Image) -> Literal["ended", "failed", "loop"]:
        """Read until the source ends or fails, or stop is asked for."""
        pace = None if self.source.is_live else (reader.fps or 10.0)
        started = time.monotonic()
        count = 0
        image: Image | None = first
        while not self._stop.is_set():
            if image is None:
                image = reader.read()
            if image is None:
                if self.source.is_live:
                    log.warning("camera %s: read failed", self.source.describe())
                    return "failed"
                return "loop" if self.source.loop else "ended"
            self.latest.put(image)
            self._set_online(True)
            image = None
            count += 1
            if pace is not None:
                # Play files at their own rate, as a camera would deliver them.
                delay = started + count / pace - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
        return "failed"
