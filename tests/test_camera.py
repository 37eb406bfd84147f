"""Camera sources and the capture thread, on real files and image sequences."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from scene_agent.camera import (
    Camera,
    LatestFrame,
    Source,
    open_source,
    parse_source,
    redact_url,
    sequence_paths,
)
from scene_agent.demo import DemoScene
from scene_agent.errors import SourceError
from tests.mqtt_helpers import wait_for


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("0", "usb"),
        ("2", "usb"),
        ("rtsp://cam.local/stream", "url"),
        ("HTTP://cam.local/mjpg", "url"),
        ("clip.mp4", "file"),
        ("frames/in%06d.jpg", "sequence"),
        ("img%d.png", "sequence"),
        ("demo", "demo"),
    ],
)
def test_parse_source(text: str, kind: str) -> None:
    assert parse_source(text).kind == kind


@pytest.mark.parametrize("bad", ["", "   ", "ftp://x/y", "file:///etc/passwd"])
def test_parse_source_rejects(bad: str) -> None:
    with pytest.raises(SourceError):
        parse_source(bad)


def test_credentials_are_redacted() -> None:
    assert redact_url("rtsp://admin:secret@10.0.0.5:554/s") == "rtsp://***:***@10.0.0.5:554/s"
    assert redact_url("rtsp://10.0.0.5/s") == "rtsp://10.0.0.5/s"
    assert "secret" not in parse_source("rtsp://admin:secret@h/s").describe()


def test_sequence_paths_sorted_by_number_from_any_start(tmp_path: Path) -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    for n in (421, 99, 1000):
        cv2.imwrite(str(tmp_path / f"in{n:06d}.jpg"), img)
    (tmp_path / "in000100.txt").write_text("not matched")
    (tmp_path / "other.jpg").write_bytes(b"")
    names = [p.name for p in sequence_paths(str(tmp_path / "in%06d.jpg"))]
    assert names == ["in000099.jpg", "in000421.jpg", "in001000.jpg"]
    reader = open_source(parse_source(str(tmp_path / "in%06d.jpg")))
    frames = [reader.read() for _ in range(4)]
    assert [f is not None for f in frames] == [True, True, True, False]


def test_sequence_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no file matches"):
        sequence_paths(str(tmp_path / "in%06d.jpg"))
    with pytest.raises(SourceError, match="not found"):
        sequence_paths(str(tmp_path / "nope" / "in%06d.jpg"))


def test_open_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        open_source(Source("file", str(tmp_path / "missing.mp4")))
    with pytest.raises(SourceError, match="not a file"):
        open_source(Source("file", str(tmp_path)))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(SourceError, match="cannot open"):
        open_source(Source("file", str(garbage)))


def test_latest_frame_keeps_only_the_newest() -> None:
    slot = LatestFrame()
    assert slot.get() is None
    assert slot.wait_newer(0, timeout=0.01) is None
    for value in range(5):
        slot.put(np.full((2, 2), value, np.uint8))
    frame = slot.get()
    assert frame is not None and frame.seq == 5 and frame.image[0, 0] == 4
    assert slot.wait_newer(5, timeout=0.01) is None
    got = slot.wait_newer(4, timeout=0.01)
    assert got is not None and got.seq == 5


def test_capture_thread_reads_a_file_then_reports_its_end(
    scene_video: Callable[..., tuple[Path, DemoScene]],
) -> None:
    path, _ = scene_video(frames=30, fps=100.0, things=())
    states: list[bool] = []
    camera = Camera(parse_source(str(path)), on_state=states.append)
    camera.start()
    try:
        assert wait_for(camera.ended.is_set)
        frame = camera.latest.get()
        assert frame is not None and frame.seq == 30
        assert frame.image.shape == (360, 640, 3)
        assert states == [True, False]
    finally:
        camera.stop()


def test_capture_thread_loops_a_file(scene_video: Callable[..., tuple[Path, DemoScene]]) -> None:
    path, _ = scene_video(frames=10, fps=200.0, things=())
    camera = Camera(parse_source(str(path), loop=True))
    camera.start()
    try:
        assert wait_for(lambda: (f := camera.latest.get()) is not None and f.seq > 25)
        assert not camera.ended.is_set()
        assert camera.online
    finally:
        camera.stop()


def test_missing_source_retries_offline_and_stops_promptly(tmp_path: Path) -> None:
    attempts: list[float] = []

    def opener(source: Source) -> object:
        attempts.append(time.monotonic())
        return open_source(source)

    camera = Camera(
        Source("file", str(tmp_path / "later.avi")),
        max_backoff_s=30.0,
        opener=opener,  # type: ignore[arg-type]
    )
    camera.start()
    assert wait_for(lambda: len(attempts) >= 3)
    assert not camera.online
    assert attempts[2] - attempts[1] > 1.5 * (attempts[1] - attempts[0])  # backing off
    started = time.monotonic()
    camera.stop()
    assert time.monotonic() - started < 1.0  # the backoff wait is cut short


def test_camera_comes_online_when_the_source_appears(
    tmp_path: Path, scene_video: Callable[..., tuple[Path, DemoScene]]
) -> None:
    target = tmp_path / "later.avi"
    states: list[bool] = []
    camera = Camera(Source("file", str(target), loop=True), on_state=states.append)
    camera.start()
    try:
        assert wait_for(lambda: camera.latest.get() is None, 0.2)
        made, _ = scene_video("made.avi", frames=10, fps=100.0, things=())
        made.rename(target)
        assert wait_for(lambda: camera.online, 15)
        assert states[0] is True
    finally:
        camera.stop()


def test_demo_source_is_deterministic() -> None:
    a = open_source(parse_source("demo"))
    b = open_source(parse_source("demo"))
    fa, fb = a.read(), b.read()
    assert fa is not None and fb is not None
    assert np.array_equal(fa, fb)
    assert a.frame_count == DemoScene().frames
