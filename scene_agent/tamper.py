"""Tamper: the lens covered, blinded or defocused, or the camera moved.

Pure core. ``TamperCheck`` judges working images against one reference model;
``TamperTracker`` turns those per-frame judgements into a condition that starts after
``start_s`` seconds of tamper and ends after ``end_s`` seconds without (video time).

Reasons:
- ``covered``: the picture has become almost uniform (a hand, tape, a cap, a bag);
- ``blinded``: most of the picture is saturated (a torch, a spotlight);
- ``defocused``: its sharpness (gradient energy over variance, so gain-independent)
  fell under half the reference's in 80 % of the picture's most detailed parts (of a
  4x4 grid): a branch blurring part of the view is not a defocused lens;
- ``moved``: the frame cannot be aligned to the reference within the shake limits,
  or more than ``VIEW_CHANGED`` of the watched picture differs (turned away, or the
  view blocked by something right in front of the lens).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from scene_agent.imaging import Image
from scene_agent.reference import SceneModel

COVERED = "covered"
BLINDED = "blinded"
DEFOCUSED = "defocused"
MOVED = "moved"
REASONS = (COVERED, BLINDED, DEFOCUSED, MOVED)

VIEW_CHANGED = 0.6
_SATURATED = 245
_BLINDED_SHARE = 0.5
_UNIFORM_STD = 4.0
_DEFOCUS_RATIO = 0.5
_DEFOCUS_SHARE = 0.8  # of the detailed blocks
_GRID = (4, 4)
_TEXTURED_VARIANCE = 16.0


def block_sharpness(grey: Image) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Per block of a 4x4 grid: gradient energy over variance, and the variance."""
    small = cv2.pyrDown(grey).astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.resize(gx * gx + gy * gy, _GRID, interpolation=cv2.INTER_AREA)
    mean = cv2.resize(small, _GRID, interpolation=cv2.INTER_AREA)
    mean_sq = cv2.resize(small * small, _GRID, interpolation=cv2.INTER_AREA)
    variance = np.maximum(mean_sq - mean * mean, 1.0)
    return np.asarray(energy / variance, np.float32), np.asarray(variance, np.float32)


def blank(grey: Image) -> bool:
    """Almost uniform, or mostly saturated: a covered or blinded lens, whatever the scene."""
    mean, std = (float(v[0][0]) for v in cv2.meanStdDev(grey))
    if std < _UNIFORM_STD:
        return True
    saturated = int(np.count_nonzero(grey >= _SATURATED))
    return mean >= 180 and saturated >= _BLINDED_SHARE * grey.size


class TamperCheck:
    """Judges working images against one reference, frame by frame.

    A frame in which nothing differs from the reference cannot show tamper, so those
    cost nothing here. The focus check (the costliest part) runs on every third frame
    that differs and its verdict holds in between: defocus is a slow condition.
    """

    FOCUS_EVERY = 3

    def __init__(self, model: SceneModel) -> None:
        self._contrast = model.contrast
        sharp, variance = block_sharpness(model.median)
        # Only the reference's most detailed blocks can show a loss of focus: a smooth
        # gradient looks the same in or out of focus.
        self._detailed = (variance >= _TEXTURED_VARIANCE) & (sharp >= float(np.median(sharp)))
        self._reference = sharp[self._detailed]
        self._differing = 0
        self._defocused = False

    def judge(self, grey: Image, *, moved: bool, changed_fraction: float) -> str | None:
        """The tamper reason this working image shows, or None."""
        if changed_fraction == 0 and not moved:
            self._differing, self._defocused = 0, False
            return None
        mean, std = (float(v[0][0]) for v in cv2.meanStdDev(grey))
        saturated = float(np.count_nonzero(grey >= _SATURATED)) / grey.size
        if saturated >= _BLINDED_SHARE and mean >= 180:
            return BLINDED
        if self._contrast >= 3 * _UNIFORM_STD and std < max(_UNIFORM_STD, 0.1 * self._contrast):
            return COVERED
        if moved:
            return MOVED
        if self._differing % self.FOCUS_EVERY == 0:
            self._defocused = std >= _UNIFORM_STD and self._blurred(grey)
        self._differing += 1
        if self._defocused:
            return DEFOCUSED
        return MOVED if changed_fraction >= VIEW_CHANGED else None

    def _blurred(self, grey: Image) -> bool:
        if self._reference.size < 4:
            return False  # a featureless reference says nothing about focus
        sharp, _ = block_sharpness(grey)
        blurred = sharp[self._detailed] < _DEFOCUS_RATIO * self._reference
        return float(blurred.mean()) >= _DEFOCUS_SHARE


@dataclass(frozen=True, slots=True)
class TamperStarted:
    time: float
    reason: str


@dataclass(frozen=True, slots=True)
class TamperEnded:
    time: float
    reason: str
    started_at: float


class TamperTracker:
    """Debounces per-frame tamper reasons into a condition, in video time."""

    def __init__(self, start_s: float = 1.0, end_s: float = 2.0) -> None:
        self._start_s = start_s
        self._end_s = end_s
        self.reason: str | None = None  # the active condition's reason
        self.started_at: float | None = None
        self._seen_since: float | None = None
        self._clear_since: float | None = None

    @property
    def active(self) -> bool:
        return self.reason is not None

    def update(self, time: float, reason: str | None) -> TamperStarted | TamperEnded | None:
        if reason is not None:
            self._clear_since = None
            if self._seen_since is None:
                self._seen_since = time
            if self.reason is None and time - self._seen_since >= self._start_s:
                self.reason, self.started_at = reason, time
                return TamperStarted(time, reason)
            return None
        self._seen_since = None
        if self.reason is None:
            return None
        if self._clear_since is None:
            self._clear_since = time
        if time - self._clear_since >= self._end_s:
            ended = TamperEnded(time, self.reason, self.started_at or time)
            self.reason, self.started_at, self._clear_since = None, None, None
            return ended
        return None

    def reset(self) -> TamperEnded | None:
        """Forget the condition (a new baseline); the end of an active one is returned."""
        ended = None
        if self.reason is not None:
            ended = TamperEnded(self.started_at or 0.0, self.reason, self.started_at or 0.0)
        self.reason, self.started_at, self._seen_since, self._clear_since = None, None, None, None
        return ended
