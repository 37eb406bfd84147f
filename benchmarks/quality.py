"""Detection quality over the labelled development sets in ``../shared/data``.

For every set, and for synthetic variants made from them (a shaking camera: random
affine warps of every frame; an exposure ramp with an object put in), it runs the
agent's detector with default settings, the round-1 detector and the seed's rule
(colour MSE > 300) and prints per set: frame-level balanced accuracy and MCC (where the
set has both quiet and changed frames), the share of quiet frames flagged, the share of
changed frames found, tamper frames, and the start error of the first episode.

Labels: ``changed`` = more than 0.5 % of the frame moving, ``quiet`` = under 0.05 %
(``truth.json``; highway from its per-frame ``motion_frac``); ambiguous frames are left
out. In the foliage sets the leaves are labelled as foreground, so they have no quiet
frame: there the table shows what is flagged, not a balanced accuracy.

The reference is the replay default: the median of the first ``learn_s`` seconds of the
clip, whose normal variation is learned from the same frames (``--reference first``),
or the median image of the whole clip with its variation learned from the first window
(``--reference median``), as a user who has a clean picture of the scene would do.

Usage: python -m benchmarks.quality [--data DIR] [--reference first|median] [--sets a,b]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.previous_detector import Detector as PreviousDetector
from benchmarks.previous_detector import PreviousSettings
from benchmarks.seed import SEED_THRESHOLD, seed_mse
from scene_agent.config import DetectorSettings
from scene_agent.detector import Detector, Image, median_frame
from scene_agent.episodes import EpisodeStarted, EpisodeTracker
from scene_agent.tamper import TamperTracker

FPS = 25.0
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class LabelledSet:
    name: str
    frames: list[Image]
    labels: list[str]  # changed / quiet / other
    mask: Image | None
    baseline: tuple[int, int] | None = None  # (index, frames) of a suggested quiet run
    plate: Image | None = None  # an empty-scene picture, where the set has one


@dataclass
class Row:
    flagged: list[bool]
    tamper: list[bool]
    episode_starts: list[int]
    ms_per_frame: float


def _read_frames(folder: Path, pattern: str = "in*.jpg") -> list[Image]:
    frames = []
    for path in sorted(folder.glob(pattern)):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read {path}")
        frames.append(image)
    return frames


def _mask(root: Path) -> Image | None:
    path = root / "ROI.bmp"
    if not path.exists():
        return None
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def load_sets(data: Path) -> Iterator[LabelledSet]:
    for root in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith("_")):
        frames = _read_frames(root / "input")
        if (root / "truth.json").exists():
            truth = json.loads((root / "truth.json").read_text())
            labels = [row["label"] for row in truth["frames"]]
        else:
            events = json.loads((root / "events.json").read_text())
            labels = []
            for row in events["frames"]:
                frac = row.get("motion_frac")
                if not row.get("labeled") or frac is None:
                    labels.append("other")
                else:
                    labels.append(
                        "changed" if frac > 0.005 else "quiet" if frac < 0.0005 else "other"
                    )
        baseline = None
        if (root / "truth.json").exists() and truth.get("suggested_baseline"):
            suggested = truth["suggested_baseline"]
            baseline = (
                suggested["start"] - truth["first_frame"],
                suggested["end"] - suggested["start"] + 1,
            )
        plate = None
        if (root / "background_derived.png").exists():
            plate = cv2.imread(str(root / "background_derived.png"), cv2.IMREAD_COLOR)
        yield LabelledSet(root.name, frames, labels, _mask(root), baseline, plate)


def shaking(base: LabelledSet, seed: int = 7) -> LabelledSet:
    """A shaking camera: each frame warped at random (shift up to +-6 % of the width,
    rotation up to +-2 degrees, scale +-2 %), then the centre 84 % kept."""
    rng = np.random.default_rng(seed)
    out = []
    for frame in base.frames:
        h, w = frame.shape[:2]
        angle = rng.uniform(-2, 2)
        scale = 1 + rng.uniform(-0.02, 0.02)
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        matrix[:, 2] += rng.uniform(-0.06, 0.06, 2) * w
        warped = cv2.warpAffine(frame, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
        y0, x0 = int(h * 0.08), int(w * 0.08)
        out.append(np.ascontiguousarray(warped[y0 : h - y0, x0 : w - x0]))
    mask = None
    if base.mask is not None:
        h, w = base.mask.shape[:2]
        mask = base.mask[int(h * 0.08) : h - int(h * 0.08), int(w * 0.08) : w - int(w * 0.08)]
    plate = None
    if base.plate is not None:
        h, w = base.plate.shape[:2]
        plate = base.plate[int(h * 0.08) : h - int(h * 0.08), int(w * 0.08) : w - int(w * 0.08)]
    return LabelledSet(base.name + "+shake", out, base.labels, mask, base.baseline, plate)


def ramp_and_object(base: LabelledSet, start: int = 110, length: int = 60) -> LabelledSet:
    """Exposure climbing from 0.25x to 1x over the first 100 frames, with a textured
    object (a hand-sized ellipse) in view from ``start`` for ``length`` frames; every
    other frame is quiet apart from what the base set moves (use a set whose own motion
    is background motion)."""
    frames, labels = [], []
    for i, frame in enumerate(base.frames):
        gain = 0.25 + 0.75 * min(1.0, i / 100)
        image = cv2.convertScaleAbs(frame, alpha=gain)
        changed = start <= i < start + length
        if changed:
            h, w = image.shape[:2]
            centre = (int(w * 0.7), int(h * 0.6))
            axes = (max(4, w // 10), max(6, h // 6))
            cv2.ellipse(image, centre, axes, 20, 0, 360, (80, 120, 200), -1)
            cv2.ellipse(image, centre, (axes[0] // 2, axes[1] // 3), 20, 0, 360, (40, 60, 110), 2)
        frames.append(image)
        labels.append("changed" if changed else "quiet")
    return LabelledSet(base.name + "+ramp+object", frames, labels, base.mask)


def _reference_frames(data: LabelledSet, kind: str, window: int) -> list[Image]:
    """The frames (or the one picture) the reference is made of."""
    if kind == "auto" and data.plate is not None:
        return [data.plate]
    if kind == "auto" and data.baseline is not None:
        start, count = data.baseline
        return data.frames[start : start + count]
    if kind == "median":
        return [median_frame(data.frames[:: max(1, len(data.frames) // 60)])]
    return data.frames[:window]


def _reference(data: LabelledSet, kind: str, window: int) -> Image:
    return median_frame(_reference_frames(data, kind, window))


def run_agent(data: LabelledSet, kind: str) -> Row:
    """As replay does: a reference of several frames is a learned model; one picture
    learns its tolerance from the first window of the clip."""
    settings = DetectorSettings()
    window = int(settings.learn_s * FPS)
    detector = Detector(settings, data.mask)
    frames = _reference_frames(data, kind, window)
    if len(frames) > 1:
        detector.set_model(detector.model_of(frames))
    else:
        detector.set_baseline(frames[0])
    if not next(iter(detector.models.values())).learned:
        detector.learn_tolerance(data.frames[:window])
    return _track(data, settings, detector.detect)


def run_previous(data: LabelledSet, kind: str) -> Row:
    settings = PreviousSettings()
    detector = PreviousDetector(settings, data.mask)
    detector.set_baseline(_reference(data, kind, int(3 * FPS)))
    return _track(data, DetectorSettings(), detector.detect)


def run_seed(data: LabelledSet, kind: str) -> Row:
    reference = _reference(data, kind, int(3 * FPS))
    flagged = [seed_mse(f, reference) > SEED_THRESHOLD for f in data.frames]
    return Row(flagged, [False] * len(flagged), _starts(flagged, 3), 0.0)


def _starts(flagged: list[bool], min_frames: int) -> list[int]:
    starts, run = [], 0
    for i, f in enumerate(flagged):
        run = run + 1 if f else 0
        if run == min_frames:
            starts.append(i - min_frames + 1)
    return starts


def _track(data: LabelledSet, settings: DetectorSettings, detect: Callable[[Image], object]) -> Row:
    tracker: EpisodeTracker[None] = EpisodeTracker(settings.min_frames, settings.event_gap_s)
    tamper = TamperTracker(settings.tamper_s, settings.tamper_clear_s)
    flagged, tampered, starts = [], [], []
    began = time.perf_counter()
    for i, frame in enumerate(data.frames):
        detection = detect(frame)
        reason = getattr(detection, "tamper", None)
        tamper.update(i / FPS, reason)
        change = tracker.update(i, i / FPS, detection, None)  # type: ignore[arg-type]
        if isinstance(change, EpisodeStarted):
            starts.append(change.first.index)
        flagged.append(bool(detection.differs))  # type: ignore[attr-defined]
        tampered.append(tamper.active)
    ms = (time.perf_counter() - began) * 1000 / max(1, len(data.frames))
    return Row(flagged, tampered, starts, ms)


def metrics(labels: list[str], row: Row) -> dict[str, float | None]:
    tp = sum(1 for lab, f in zip(labels, row.flagged, strict=True) if lab == "changed" and f)
    fn = sum(1 for lab, f in zip(labels, row.flagged, strict=True) if lab == "changed" and not f)
    fp = sum(1 for lab, f in zip(labels, row.flagged, strict=True) if lab == "quiet" and f)
    tn = sum(1 for lab, f in zip(labels, row.flagged, strict=True) if lab == "quiet" and not f)
    tpr = tp / (tp + fn) if tp + fn else None
    fpr = fp / (fp + tn) if fp + tn else None
    ba = mcc = None
    if tpr is not None and fpr is not None:
        ba = (tpr + 1 - fpr) / 2
        denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = (tp * tn - fp * fn) / denominator if denominator else 0.0
    first_changed = next((i for i, lab in enumerate(labels) if lab == "changed"), None)
    start_error = None
    if first_changed is not None:
        later = [s for s in row.episode_starts if s >= first_changed - 25]
        start_error = float(later[0] - first_changed) if later else None
    return {
        "ba": ba,
        "mcc": mcc,
        "quiet_flagged": fpr,
        "changed_found": tpr,
        "tamper": sum(row.tamper) / len(row.tamper),
        "start_error": start_error,
        "episodes": float(len(row.episode_starts)),
        "ms": row.ms_per_frame,
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--reference", choices=["auto", "first", "median"], default="auto")
    parser.add_argument("--sets", default="", help="comma-separated name filter")
    parser.add_argument("--rows", default="agent,round1,seed")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no data at {args.data}", file=sys.stderr)
        return 2
    runners = {"agent": run_agent, "round1": run_previous, "seed": run_seed}
    wanted = [w for w in args.sets.split(",") if w]
    print(f"reference: {args.reference}; default settings; {FPS:g} fps assumed")
    print(
        f"{'set':38} {'rule':7} {'BA':>5} {'MCC':>5} {'quiet!':>6} {'found':>6} "
        f"{'tamper':>6} {'start':>5} {'eps':>4} {'ms':>5}"
    )
    for base in load_sets(args.data):
        variants = [base, shaking(base)]
        if base.name == "sbi2015-Foliage":
            variants.append(ramp_and_object(base))
        for data in variants:
            if wanted and not any(w in data.name for w in wanted):
                continue
            for rule in args.rows.split(","):
                m = metrics(data.labels, runners[rule](data, args.reference))
                print(
                    f"{data.name:38} {rule:7} {_fmt(m['ba']):>5} {_fmt(m['mcc']):>5} "
                    f"{_fmt(m['quiet_flagged']):>6} {_fmt(m['changed_found']):>6} "
                    f"{_fmt(m['tamper']):>6} {_fmt(m['start_error'], 0):>5} "
                    f"{_fmt(m['episodes'], 0):>4} {_fmt(m['ms'], 1):>5}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
