"""Speed of the detector and of replay, against references measured in the same run.

Usage: python -m benchmarks.speed   (needs the 'bench' extra: pip install -e .[bench])

1. Detector cost per frame at 1280x720 and 1920x1080, against the seed's per-frame
   comparison (re-read snap.jpg from disk, float64 MSE over the full-size colour frame)
   and the round-1 detector (``benchmarks/previous_detector.py``): steady camera and
   light, light changing every frame, and a shaking camera (every frame shifted and
   rotated, so the affine alignment runs). Targets: at most 2x the round-1 detector,
   at least 25x cheaper than the seed, at 1080p.
2. Learning a reference over a window (50 frames: 2 s at 25 fps), CPU seconds at 1080p.
   Target: at most 1 s.
3. Replay throughput on an H.264 1080p clip, against decoding alone (VideoCapture.read in
   a loop). Target: replay at most 1.35x the decode time.
4. Peak memory (max RSS) of replay at 1080p, against decoding alone, in child processes.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

from benchmarks.previous_detector import Detector as PreviousDetector
from benchmarks.previous_detector import PreviousSettings
from benchmarks.seed import seed_compare
from scene_agent.camera import parse_source
from scene_agent.config import DetectorSettings
from scene_agent.demo import DemoRenderer, DemoScene, Thing
from scene_agent.detector import Detector
from scene_agent.replay import replay

CLIP_FRAMES = 240
ROOT = Path(__file__).resolve().parents[1]


def per_call_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median over 5 rounds of the mean time per call, in ms."""
    fn()
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            fn()
        rounds.append((time.perf_counter() - started) / repeat * 1000)
    return statistics.median(rounds)


def detector_vs_seed(folder: Path) -> None:
    print("1. detector cost per frame (median of 5 rounds)")
    for width, height in ((1280, 720), (1920, 1080)):
        scene = DemoScene(width=width, height=height, frames=2)
        renderer = DemoRenderer(scene)
        baseline = renderer.frame(0)
        frame = DemoRenderer(
            DemoScene(
                width=width,
                height=height,
                things=(Thing(0, None, (width // 8, height // 4), (20, 20, 20), (100.0, 100.0)),),
            )
        ).frame(1)
        snap = folder / "snap.jpg"
        cv2.imwrite(str(snap), baseline)
        detector = Detector(DetectorSettings())
        detector.set_baseline(baseline)
        previous = PreviousDetector(PreviousSettings())
        previous.set_baseline(baseline)
        ours = per_call_ms(lambda: detector.detect(frame), 100)  # noqa: B023
        before = per_call_ms(lambda: previous.detect(frame), 100)  # noqa: B023
        # Alternating with a 4 % brighter copy moves the quartiles every frame, so the
        # tone curve is refitted every time (no reuse).
        brighter = cv2.convertScaleAbs(frame, alpha=1.04)
        frames = [frame, brighter]
        counter = iter(range(10**9))
        refit = per_call_ms(lambda: detector.detect(frames[next(counter) % 2]), 100)  # noqa: B023
        before_refit = per_call_ms(lambda: previous.detect(frames[next(counter) % 2]), 100)  # noqa: B023
        # A shaking camera: frames moved by a few pixels and a degree, every frame
        # different, so the phase correlation and the ECC warp both run.
        shaken = [shake(frame, i) for i in range(8)]
        shake_ms = per_call_ms(lambda: detector.detect(shaken[next(counter) % 8]), 48)  # noqa: B023
        seed = per_call_ms(lambda: seed_compare(frame, snap), 10)  # noqa: B023
        print(
            f"   {width}x{height}: scene-agent {ours:.2f} ms steady / {refit:.2f} ms light "
            f"changing / {shake_ms:.2f} ms shaking; round 1 {before:.2f} / {before_refit:.2f} ms; "
            f"seed {seed:.1f} ms"
        )
        print(
            f"      vs round 1: {ours / before:.2f}x / {refit / before_refit:.2f}x "
            f"(target <= 2x); vs seed: {seed / ours:.0f}x / {seed / refit:.0f}x / "
            f"{seed / shake_ms:.0f}x cheaper (target >= 25x at 1080p)"
        )


def shake(frame: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = frame.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-1, 1), 1.0)
    matrix[:, 2] += rng.uniform(-0.03, 0.03, 2) * w
    return cv2.warpAffine(frame, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def learning_cost() -> None:
    print("2. learning a reference over a window of 50 frames (2 s at 25 fps), 1920x1080")
    scene = DemoScene(width=1920, height=1080, frames=50)
    renderer = DemoRenderer(scene)
    frames = [renderer.frame(i) for i in range(scene.frames)]
    detector = Detector(DetectorSettings())
    started = time.process_time()
    detector.model_of(frames)
    cpu = time.process_time() - started
    print(f"   {cpu:.2f} s of CPU (target <= 1 s)")


def make_h264_clip(path: Path, noise_sigma: float = 4.0, bitrate: str | None = None) -> None:
    scene = DemoScene(
        width=1920, height=1080, frames=CLIP_FRAMES, fps=25.0, noise_sigma=noise_sigma
    )
    renderer = DemoRenderer(scene)
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    command = [
        ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
        "-s", "1920x1080", "-r", "25", "-i", "-", "-c:v", "libx264", "-preset", "veryfast",
        "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    if bitrate is not None:  # constant bitrate, as IP cameras stream
        command += ["-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate]
    command.append(str(path))
    with subprocess.Popen(command, stdin=subprocess.PIPE) as proc:
        assert proc.stdin is not None
        for index in range(scene.frames):
            proc.stdin.write(renderer.frame(index).tobytes())
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError("ffmpeg failed to encode the benchmark clip")


def decode_only(path: Path) -> int:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while True:
        ok, _ = capture.read()
        if not ok:
            break
        count += 1
    capture.release()
    return count


def replay_clip(path: Path) -> int:
    return replay(parse_source(str(path)), DetectorSettings()).frames


def throughput(path: Path, label: str) -> None:
    print(f"3. replay throughput, H.264 1080p, {label} (best of 3 runs each, interleaved)")
    decode_s, replay_s = [], []
    for _ in range(3):
        started = time.perf_counter()
        frames = decode_only(path)
        decode_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        replayed = replay_clip(path)
        replay_s.append(time.perf_counter() - started)
    assert frames == CLIP_FRAMES and replayed == CLIP_FRAMES
    d, r = min(decode_s), min(replay_s)
    print(f"   decode only: {frames / d:.1f} frames/s ({d / frames * 1000:.2f} ms/frame)")
    print(f"   replay:      {frames / r:.1f} frames/s ({r / frames * 1000:.2f} ms/frame)")
    print(f"   replay takes {r / d:.2f}x the decode time (target <= 1.35x)")


def child_peak_mb(call: str) -> float:
    """Peak RSS in MB of a fresh interpreter that imports the benchmark and runs ``call``.

    Read from VmHWM: getrusage's ru_maxrss survives exec on Linux, so a child would
    report this (larger) parent's peak.
    """
    code = (
        "from pathlib import Path; "
        "from benchmarks.speed import decode_only, replay_clip; "
        f"{call}; "
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return int(proc.stdout.split()[-1]) / 1024


def memory(path: Path) -> None:
    print("4. peak memory (max RSS of a child process)")
    decode = child_peak_mb(f"decode_only(Path({str(path)!r}))")
    full = child_peak_mb(f"replay_clip(Path({str(path)!r}))")
    print(f"   decode only: {decode:.0f} MB; replay: {full:.0f} MB (+{full - decode:.0f} MB)")


def main() -> int:
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        detector_vs_seed(folder)
        learning_cost()
        clip = folder / "clip1080.mp4"
        make_h264_clip(clip)
        throughput(clip, "demo scene, CRF 23 (compresses well, cheap to decode)")
        camera = folder / "camera1080.mp4"
        make_h264_clip(camera, noise_sigma=8.0, bitrate="8M")
        throughput(camera, "noisier scene at 8 Mbit/s CBR (like an IP camera stream)")
        memory(camera)
    return 0


if __name__ == "__main__":
    sys.exit(main())
