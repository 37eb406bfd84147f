"""The built-in demo scene: a deterministic generated clip with known truth.

A textured room seen by a noisy camera, with a slow lighting drift and a sudden
auto-exposure step (neither must raise an event), a figure that crosses the room
(one episode), and a bag that is left behind and stays (an episode still open at the end).
Use the source name ``demo`` anywhere a camera source is accepted, or write it to a file
with ``write_video``. Tests build variants of it (other seeds, sizes, objects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from scene_agent.detector import Image


@dataclass(frozen=True, slots=True)
class Thing:
    """A rectangle-ish object: present from ``start`` to ``end`` (exclusive; None = stays)."""

    start: int
    end: int | None
    size: tuple[int, int]  # width, height in pixels
    colour: tuple[int, int, int]
    # Position at ``start`` and velocity in pixels per frame (0, 0 for a still object).
    origin: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)

    def visible(self, index: int) -> bool:
        return index >= self.start and (self.end is None or index < self.end)


@dataclass(frozen=True, slots=True)
class DemoScene:
    width: int = 640
    height: int = 360
    fps: float = 10.0
    frames: int = 240
    seed: int = 7
    noise_sigma: float = 4.0
    drift: float = 0.06  # amplitude of a slow sinusoidal gain drift
    # (first frame, end frame, gain): a sudden global exposure change, e.g. auto-exposure.
    exposure_steps: tuple[tuple[int, int, float], ...] = ((100, 125, 1.15),)
    things: tuple[Thing, ...] = field(
        default=(
            # A figure walks in from the left edge and out on the right.
            Thing(45, 85, (70, 150), (40, 50, 70), (-69.0, 150.0), (17.0, 0.0)),
            # A bag is put down and left behind.
            Thing(150, None, (80, 60), (30, 110, 200), (420.0, 250.0)),
        )
    )

    def truth(self) -> list[tuple[int, int | None]]:
        """(first frame, last frame) where each thing is visible; None if still there at the end."""
        spans: list[tuple[int, int | None]] = []
        for thing in self.things:
            first = next((i for i in range(self.frames) if self._on_screen(thing, i)), None)
            if first is None:
                continue
            last = max(i for i in range(self.frames) if self._on_screen(thing, i))
            spans.append((first, None if last == self.frames - 1 else last))
        return spans

    def _on_screen(self, thing: Thing, index: int) -> bool:
        if not thing.visible(index):
            return False
        x0, y0, x1, y1 = _rect(thing, index)
        return x1 > 0 and y1 > 0 and x0 < self.width and y0 < self.height


def _rect(thing: Thing, index: int) -> tuple[int, int, int, int]:
    t = index - thing.start
    x = round(thing.origin[0] + thing.velocity[0] * t)
    y = round(thing.origin[1] + thing.velocity[1] * t)
    return x, y, x + thing.size[0], y + thing.size[1]


class DemoRenderer:
    """Renders the scene's frames; frame ``i`` is the same on every run."""

    def __init__(self, scene: DemoScene) -> None:
        self.scene = scene
        self._background = _background(scene)

    def frame(self, index: int) -> Image:
        s = self.scene
        image = self._background.copy()
        for thing in s.things:
            if thing.visible(index):
                x0, y0, x1, y1 = _rect(thing, index)
                cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), thing.colour, -1)
                # A little texture so the object is not a flat patch.
                cv2.line(image, (x0, y0), (x1 - 1, y1 - 1), (200, 200, 200), 2)
        gain = 1.0 + s.drift * math.sin(2 * math.pi * index / max(1, s.frames))
        for first, end, step in s.exposure_steps:
            if first <= index < end:
                gain *= step
        # OpenCV's generator is thread-local and much faster than numpy's for this size;
        # seeding it per frame keeps frame i the same on every run.
        cv2.setRNGSeed(s.seed * 1_000_003 + index)
        noise = np.empty((s.height, s.width, 3), np.float32)
        cv2.randn(noise, np.zeros(3), np.full(3, s.noise_sigma))
        noisy = cv2.add(image * np.float32(gain), noise)
        frame: Image = np.clip(noisy, 0, 255).astype(np.uint8)
        return frame


def _background(scene: DemoScene) -> Image:
    """A room: smooth shading, a floor, furniture and fine texture."""
    rng = np.random.default_rng(scene.seed)
    w, h = scene.width, scene.height
    coarse = rng.uniform(60, 190, size=(6, 10, 3)).astype(np.float32)
    image = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    floor = int(h * 0.62)
    image[floor:] = image[floor:] * 0.7 + np.float32(30)
    for _ in range(7):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        x1, y1 = x0 + int(rng.integers(25, w // 4)), y0 + int(rng.integers(25, h // 3))
        colour = tuple(float(c) for c in rng.uniform(20, 235, size=3))
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, -1)
    texture = cv2.GaussianBlur(rng.normal(0, 12, size=(h, w)).astype(np.float32), (3, 3), 0)
    background: Image = np.clip(image + texture[..., None], 0, 255).astype(np.float32)
    return background


class DemoReader:
    """A FrameReader over the demo scene (no file needed)."""

    def __init__(self, scene: DemoScene | None = None) -> None:
        self._renderer = DemoRenderer(scene or DemoScene())
        self._next = 0
        self.fps: float | None = self._renderer.scene.fps
        self.frame_count: int | None = self._renderer.scene.frames

    def read(self) -> Image | None:
        if self._next >= self._renderer.scene.frames:
            return None
        frame = self._renderer.frame(self._next)
        self._next += 1
        return frame

    def close(self) -> None:
        self._next = self._renderer.scene.frames


def write_video(path: Path, scene: DemoScene | None = None) -> Path:
    """Write the scene as a video file (MJPEG in AVI: every OpenCV build can write it)."""
    scene = scene or DemoScene()
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter.fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, scene.fps, (scene.width, scene.height))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}")
    renderer = DemoRenderer(scene)
    try:
        for index in range(scene.frames):
            writer.write(renderer.frame(index))
    finally:
        writer.release()
    return path
