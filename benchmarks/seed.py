"""A faithful re-implementation of the seed tutorial's per-frame comparison (the reference).

Per frame the seed re-read ``snap.jpg`` from disk and computed a float64 MSE over the
full-size colour frame (the classic ``np.sum((a - b) ** 2) / (h * w)``); a frame with
MSE > 300 was saved as a change.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from scene_agent.detector import Image

SEED_THRESHOLD = 300.0


def seed_mse(frame: Image, snapshot: Image) -> float:
    err = np.sum((frame.astype("float") - snapshot.astype("float")) ** 2)
    return float(err / float(frame.shape[0] * frame.shape[1]))


def seed_compare(frame: Image, snap_path: Path) -> float:
    snapshot = cv2.imread(str(snap_path))
    if snapshot is None:
        raise OSError(f"cannot read {snap_path}")
    return seed_mse(frame, snapshot)
