"""`scene-agent replay` end to end on generated video files and image sequences."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from scene_agent.camera import parse_source
from scene_agent.cli import main
from scene_agent.config import DetectorSettings
from scene_agent.demo import DemoRenderer, DemoScene, Thing
from scene_agent.replay import replay

MIN_FRAMES = DetectorSettings().min_frames

SceneVideo = Callable[..., tuple[Path, DemoScene]]


def run_replay(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "result.json"
    assert main(["replay", *args, "--json", str(out)]) == 0
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def assert_matches_truth(
    result: dict[str, Any], scene: DemoScene, gap_s: float = DetectorSettings().event_gap_s
) -> None:
    truth = scene.truth()
    events = result["events"]
    assert len(events) == len(truth), (events, truth)
    for event, (first, last) in zip(events, truth, strict=True):
        assert first <= event["start_frame"] <= first + MIN_FRAMES + 2, (event, first)
        if last is None or last + gap_s * scene.fps >= scene.frames:  # open at the end
            assert event["end_frame"] is None
        else:
            assert event["end_frame"] is not None
            assert last - 2 <= event["end_frame"] <= last + 1, (event, last)


def test_demo_scene_json_contract(tmp_path: Path) -> None:
    result = run_replay(tmp_path, "demo", "--scores")
    scene = DemoScene()
    assert set(result) == {
        "frames",
        "fps",
        "threshold",
        "events",
        "tamper",
        "scores",
        "differs",
        "mse",
    }
    assert result["frames"] == scene.frames
    assert result["fps"] == scene.fps
    assert result["threshold"] == DetectorSettings().threshold
    assert len(result["scores"]) == len(result["differs"]) == scene.frames
    assert all(isinstance(s, float | int) for s in result["scores"])
    assert all(isinstance(d, bool) for d in result["differs"])
    for event in result["events"]:
        assert {"start_frame", "end_frame", "peak_score"} <= set(event)
    assert_matches_truth(result, scene)
    # The exposure step (frames 100-124) and the drift never differ.
    assert not any(result["differs"][90:140])
    # The bag is still there at the end: an open episode with null end.
    assert result["events"][-1]["end_frame"] is None


def test_without_scores_flag_there_are_no_scores(tmp_path: Path) -> None:
    result = run_replay(tmp_path, "demo")
    assert set(result) == {"frames", "fps", "threshold", "events", "tamper"}


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        # Enters from the right, stays a while, leaves upwards; 720p, mp4v.
        (
            "enter-stay-leave.mp4",
            {
                "width": 1280,
                "height": 720,
                "frames": 160,
                "seed": 11,
                "exposure_steps": (),
                "things": (
                    Thing(30, 120, (120, 200), (200, 210, 220), (1280.0, 400.0), (-20.0, 0.0)),
                ),
            },
        ),
        # Small camera, small dark object put down and taken away, plus a 15 % exposure jump.
        (
            "small-camera.avi",
            {
                "width": 320,
                "height": 240,
                "frames": 150,
                "seed": 5,
                "exposure_steps": ((10, 30, 1.15), (100, 140, 0.85)),
                "things": (Thing(50, 90, (24, 24), (15, 15, 15), (150.0, 180.0)),),
            },
        ),
    ],
)
def test_unseen_videos_match_their_truth(
    tmp_path: Path, scene_video: SceneVideo, name: str, changes: dict[str, Any]
) -> None:
    path, scene = scene_video(name, **changes)
    result = run_replay(tmp_path, str(path))
    assert_matches_truth(result, scene)


@pytest.mark.parametrize("gain", [0.85, 1.15])
def test_noise_and_global_brightness_shift_give_no_episode(
    tmp_path: Path, scene_video: SceneVideo, gain: float
) -> None:
    path, _ = scene_video(
        frames=80, seed=21, noise_sigma=6.0, things=(), exposure_steps=((20, 80, gain),)
    )
    result = run_replay(tmp_path, str(path), "--scores")
    assert result["events"] == []
    assert max(result["scores"]) < DetectorSettings().threshold / 2


def test_image_sequence_and_baseline_image(tmp_path: Path) -> None:
    scene = DemoScene(
        frames=60, exposure_steps=(), things=(Thing(20, 40, (60, 60), (0, 0, 0), (300.0, 100.0)),)
    )
    renderer = DemoRenderer(scene)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(scene.frames):
        cv2.imwrite(str(frames / f"in{i + 500:06d}.jpg"), renderer.frame(i))
    cv2.imwrite(str(tmp_path / "ref.png"), DemoRenderer(DemoScene(things=())).frame(0))
    a = run_replay(tmp_path, str(frames / "in%06d.jpg"), "--fps", "10")
    b = run_replay(
        tmp_path, str(frames / "in%06d.jpg"), "--fps", "10", "--baseline", str(tmp_path / "ref.png")
    )
    for result in (a, b):
        assert_matches_truth(result, scene)
        assert result["fps"] == 10


def test_median_baseline_taken_over_a_passer_by(tmp_path: Path, scene_video: SceneVideo) -> None:
    # Something passes in frames 0-3. A one-frame baseline at 0 keeps it in the reference:
    # once it has gone, the empty scene "differs" for good. A median of 9 frames leaves it
    # out: the passer-by is one short episode and the rest is quiet.
    path, _ = scene_video(
        frames=80, exposure_steps=(), things=(Thing(0, 4, (100, 100), (0, 0, 0), (100.0, 100.0)),)
    )
    single = run_replay(tmp_path, str(path), "--baseline-frames", "1")
    median = run_replay(tmp_path, str(path), "--baseline-frames", "9")
    # On a still background a new difference counts at once (no persistence delay).
    assert [(e["start_frame"], e["end_frame"]) for e in single["events"]] == [(4, None)]
    assert [(e["start_frame"], e["end_frame"]) for e in median["events"]] == [(0, 3)]


def test_out_writes_labelled_frames(tmp_path: Path, scene_video: SceneVideo) -> None:
    path, _ = scene_video(frames=200, exposure_steps=())
    out = tmp_path / "labelled"
    run_replay(tmp_path, str(path), "--out", str(out))
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 4  # start + peak for the passer-by, start + peak-so-far for the bag
    assert any(n.endswith("-start.jpg") for n in names) and any(
        n.endswith("-peak.jpg") for n in names
    )
    image = cv2.imread(str(out / names[0]))
    assert image is not None and image.shape == (360, 640, 3)
    # The box is drawn in pure red somewhere on it.
    red = (image[..., 2] > 200) & (image[..., 1] < 60) & (image[..., 0] < 60)
    assert red.sum() > 100


def test_replay_function_reports_same_as_cli(scene_video: SceneVideo, tmp_path: Path) -> None:
    path, _ = scene_video(frames=120)
    from scene_agent.camera import parse_source

    result = replay(parse_source(str(path)), DetectorSettings(), keep_scores=True)
    cli = run_replay(tmp_path, str(path), "--scores")
    assert result.as_json(True) == cli
    assert result.frames == 120


def test_cli_overrides_threshold(tmp_path: Path) -> None:
    result = run_replay(tmp_path, "demo", "--threshold", "1000")
    assert result["threshold"] == 1000
    assert result["events"] == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: str(d / "missing.mp4"), "not found"),
        (
            lambda d: (d / "bad.mp4").write_bytes(b"\x00\x01junk" * 500) and str(d / "bad.mp4"),
            "cannot open",
        ),
        (lambda d: str(d / "frames%06d.jpg"), "no file matches"),
        (lambda d: str(d / "nowhere" / "f%04d.png"), "not found"),
    ],
)
def test_bad_sources_exit_2_with_a_clear_message(
    tmp_path: Path, make: Callable[[Path], str], message: str
) -> None:
    source = make(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "scene_agent", "replay", source],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "1000"], "past the end"),
        (["--baseline", "nope.png"], "not found"),
        (["--baseline-frames", "0"], "at least 1"),
        (["--threshold", "-3"], "detector.threshold"),
        (["--mask", "nope.png"], "detector.mask"),
    ],
)
def test_bad_replay_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["replay", "demo", *args]) == 2
    assert message in capsys.readouterr().err


def test_summary_line_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "demo"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("240 frames in ")
    assert "2 episode(s) (1 still open at the end)" in err[-1]


def test_a_reader_failure_mid_way_is_raised_not_swallowed() -> None:
    from scene_agent.camera import Source
    from scene_agent.demo import DemoReader

    class Failing(DemoReader):
        def __init__(self) -> None:
            super().__init__(DemoScene(frames=50))
            self.reads = 0

        def read(self) -> Any:
            self.reads += 1
            if self.reads == 20:
                raise OSError("device vanished")
            return super().read()

    with pytest.raises(OSError, match="device vanished"):
        replay(Source("demo", "demo"), DetectorSettings(), opener=lambda _s: Failing())


def test_exposure_ramp_passer_by_and_parcel_give_exactly_two_episodes(
    tmp_path: Path, scene_video: SceneVideo
) -> None:
    # The exposure climbs 15 % in 15 small steps over the first 150 frames while a figure
    # crosses and a parcel is put down and left: only those two are episodes.
    ramp = tuple((10 * (i + 1), 240, 1.15 ** (1 / 15)) for i in range(15))
    path, scene = scene_video(drift=0.0, exposure_steps=ramp)
    result = run_replay(tmp_path, str(path), "--plot", str(tmp_path / "score.png"))
    assert_matches_truth(result, scene)
    plot = cv2.imread(str(tmp_path / "score.png"))
    assert plot is not None and plot.shape[1] == 1200
    # The plot shades the two episodes (orange) on white.
    orange = np.all(plot == (170, 215, 255), axis=2)
    assert orange.any(axis=0).sum() > 100


def test_a_scene_that_differs_from_the_start_gets_a_threshold_hint(tmp_path: Path) -> None:
    # Something is there from the first frame on that the reference picture lacks: the
    # episode covers the whole clip, which is what a too-low threshold also looks like.
    bag = Thing(0, None, (80, 60), (30, 110, 200), (420.0, 250.0))
    scene = DemoScene(frames=60, exposure_steps=(), things=(bag,))
    renderer = DemoRenderer(scene)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(scene.frames):
        cv2.imwrite(str(frames / f"in{i:06d}.jpg"), renderer.frame(i))
    empty = DemoRenderer(DemoScene(frames=1, exposure_steps=(), things=())).frame(0)
    result = replay(
        parse_source(str(frames / "in%06d.jpg")),
        DetectorSettings(),
        baseline=empty,
        baseline_frames=1,
        fps=10,
        keep_scores=True,
    )
    advice = result.threshold_advice()
    assert advice is not None and "--threshold" in advice
    assert advice in result.summary()
