"""Shared fixtures: synthetic frames for the pure core, generated videos for end to end."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from scene_agent.config import DetectorSettings
from scene_agent.demo import DemoScene, write_video
from scene_agent.detector import Detection, Detector, Image
from tests.mqtt_helpers import Broker


class _ThreadErrors(logging.Handler):
    """Collects errors logged with a traceback from threads other than the test's."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.thread != threading.main_thread().ident:
            self.records.append(record)


@pytest.fixture(autouse=True)
def no_thread_crashes() -> Iterator[None]:
    """Fails a test in which any thread died of an exception or logged one (a paho
    callback that raised, a web handler that failed): those are bugs even when the
    test's own checks pass. (Agents in child processes are checked through their logs.)"""
    crashes: list[str] = []
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        crashes.append(f"{name}: {args.exc_type.__name__}: {args.exc_value}")
        previous(args)

    handler = _ThreadErrors()
    root = logging.getLogger()
    root.addHandler(handler)
    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous
        root.removeHandler(handler)
    crashes += [f"{r.threadName}: {r.getMessage()}" for r in handler.records]
    assert not crashes, f"exceptions in threads: {crashes}"


def textured_scene(width: int = 640, height: int = 360, seed: int = 1) -> Image:
    """A colour scene with structure at several scales (like a real room or street)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 210, size=(5, 8, 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(10):
        x, y = int(rng.integers(0, width - 30)), int(rng.integers(0, height - 30))
        w, h = int(rng.integers(10, width // 5)), int(rng.integers(10, height // 4))
        colour = tuple(float(c) for c in rng.uniform(10, 245, size=3))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
    image += rng.normal(0, 10, size=(height, width, 3)).astype(np.float32)
    frame: Image = np.clip(image, 0, 255).astype(np.uint8)
    return frame


def add_noise(frame: Image, sigma: float, seed: int = 0) -> Image:
    rng = np.random.default_rng(seed)
    noisy = frame.astype(np.float32) + rng.normal(0, sigma, size=tuple(frame.shape)).astype(
        np.float32
    )
    out: Image = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def brighten(frame: Image, gain: float) -> Image:
    out: Image = np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return out


def jpeg_roundtrip(frame: Image, quality: int) -> Image:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert out is not None
    return out


def with_object(
    frame: Image, x: int, y: int, w: int, h: int, *, colour: tuple[int, int, int] = (20, 20, 20)
) -> Image:
    out = frame.copy()
    cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), colour, -1)
    return out


@pytest.fixture
def detector_settings() -> DetectorSettings:
    return DetectorSettings()


@pytest.fixture
def scene_video(tmp_path: Path) -> Callable[..., tuple[Path, DemoScene]]:
    """Write a generated scene (a DemoScene variant) to a real video file."""

    def make(name: str = "scene.avi", **changes: object) -> tuple[Path, DemoScene]:
        scene = DemoScene(**changes)  # type: ignore[arg-type]
        return write_video(tmp_path / name, scene), scene

    return make


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto of the test's own on a free loopback port."""
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def twice(detector: Detector, frame: Image) -> Detection:
    """What the detector says about a frame seen twice in a row: past the one frame of
    persistence a new difference needs (``detector.persistence``)."""
    detector.detect(frame)
    return detector.detect(frame)
