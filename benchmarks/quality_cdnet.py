"""Frame-level change detection quality on real labelled footage (CDnet 2014 highway).

Usage: python -m benchmarks.quality_cdnet [DATASET_DIR]
(default: ../shared/data/cdnet2014-baseline-highway next to the repository)

Baseline: the median of the warm-up frames before the temporal ROI (421-469; cars are in
view there, the median leaves them out). Truth per labelled frame: "changed" when more than
0.5 % of the region of interest is labelled motion (255). Prints precision, recall and F1
of scene-agent's per-frame decision (before debouncing) next to the seed's rule (full-size
colour MSE > 300 against the same baseline), and a threshold sweep.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.seed import SEED_THRESHOLD, seed_mse
from scene_agent.config import DetectorSettings
from scene_agent.detector import Detector, Image, median_frame

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared/data/cdnet2014-baseline-highway"
TRUTH_SHARE = 0.005


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, predicted: bool, actual: bool) -> None:
        if predicted and actual:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif actual:
            self.fn += 1
        else:
            self.tn += 1

    def line(self, name: str) -> str:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return (
            f"{name:<44} precision {p:.3f}  recall {r:.3f}  F1 {f1:.3f}  "
            f"(tp {self.tp}, fp {self.fp}, fn {self.fn}, tn {self.tn})"
        )


def read(path: Path, flags: int = cv2.IMREAD_COLOR) -> Image:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise OSError(f"cannot read {path}")
    return image


def load(folder: Path) -> tuple[list[Image], list[bool], list[Image], Image]:
    first, last = (int(v) for v in (folder / "temporalROI.txt").read_text().split())
    roi = read(folder / "ROI.bmp", cv2.IMREAD_GRAYSCALE)
    inside = roi > 0
    warmup, frames, truth = [], [], []
    for path in sorted((folder / "input").glob("in*.jpg")):
        number = int(path.stem[2:])
        image = read(path)
        if number < first:
            warmup.append(image)
            continue
        if number > last:
            break
        gt = read(folder / "groundtruth" / f"gt{number:06d}.png", cv2.IMREAD_GRAYSCALE)
        frames.append(image)
        truth.append(float(np.mean(gt[inside] == 255)) > TRUTH_SHARE)
    return warmup, truth, frames, roi


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    if not (folder / "input").is_dir():
        print(f"dataset not found at {folder}", file=sys.stderr)
        return 2
    warmup, truth, frames, roi = load(folder)
    baseline = median_frame(warmup)
    print(
        f"{len(frames)} labelled frames, {sum(truth)} changed (> {TRUTH_SHARE:.1%} of ROI), "
        f"baseline = median of {len(warmup)} warm-up frames"
    )

    default = DetectorSettings()
    sweep = sorted({default.threshold, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0, 76.0, 96.0})
    for gain, label in ((1.0, "as recorded"), (1.15, "every frame 15 % brighter (auto-exposure)")):
        shown = frames if gain == 1.0 else [brighten(f, gain) for f in frames]
        print(f"\n-- {label}")
        seed = Scores()
        for frame, actual in zip(shown, truth, strict=True):
            seed.add(seed_mse(frame, baseline) > SEED_THRESHOLD, actual)
        print(seed.line(f"seed: colour MSE > {SEED_THRESHOLD:g}"))
        results: dict[tuple[bool, float], Scores] = {}
        for use_mask in (False, True):
            detector = Detector(default, roi if use_mask else None)
            detector.set_baseline(baseline)
            detections = [detector.detect(f) for f in shown]
            for threshold in sweep:
                scores = Scores()
                for d, actual in zip(detections, truth, strict=True):
                    decided = d.score >= threshold and d.changed_fraction >= default.min_area
                    scores.add(decided, actual)
                results[(use_mask, threshold)] = scores
        for use_mask in (False, True):
            where = "ROI mask" if use_mask else "no mask"
            print(results[(use_mask, default.threshold)].line(f"scene-agent defaults, {where}"))
        print("threshold sweep (scene-agent, ROI mask, other settings default):")
        for threshold in sweep:
            print("  " + results[(True, threshold)].line(f"threshold {threshold:g}"))
    return 0


def brighten(frame: Image, gain: float) -> Image:
    out: Image = cv2.convertScaleAbs(frame, alpha=gain)
    return out


if __name__ == "__main__":
    sys.exit(main())
