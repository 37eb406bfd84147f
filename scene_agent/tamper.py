"""Tamper: the lens covered, blinded or defocused, or the camera moved.

Pure core. ``frame_tamper`` judges one working image against the reference model;
``TamperTracker`` turns those per-frame judgements into a condition that starts after
``start_s`` seconds of tamper and ends after ``end_s`` seconds without (video time).

Reasons:
- ``covered``: the picture has become almost uniform (a hand, tape, a cap, a bag);
- ``blinded``: most of the picture is saturated (a torch, a spotlight);
- ``defocused``: its sharpness (gradient energy over variance, so gain-independent)
  fell under 0.45 of the reference's;
- ``moved``: the frame cannot be aligned to the reference within the shake limits,
  or more than ``VIEW_CHANGED`` of the watched picture differs (turned away, or the
  view blocked by something right in front of the lens).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from scene_agent.imaging import Image
from scene_agent.reference import SceneModel, sharpness

COVERED = "covered"
BLINDED = "blinded"
DEFOCUSED = "defocused"
MOVED = "moved"
REASONS = (COVERED, BLINDED, DEFOCUSED, MOVED)

VIEW_CHANGED = 0.6
_SATURATED = 245
_BLINDED_SHARE = 0.5
_UNIFORM_STD = 4.0
_DEFOCUS_RATIO = 0.45


def blank(grey: Image) -> bool:
    """Almost uniform, or mostly saturated: a covered or blinded lens, whatever the scene."""
    mean, std = (float(v[0][0]) for v in cv2.meanStdDev(grey))
    if std < _UNIFORM_STD:
        return True
    saturated = int(np.count_nonzero(grey >= _SATURATED))
    return mean >= 180 and saturated >= _BLINDED_SHARE * grey.size


def frame_tamper(
    grey: Image, model: SceneModel, *, moved: bool, changed_fraction: float
) -> str | None:
    """The tamper reason this working image shows against the model, or None."""
    mean, std = (float(v[0][0]) for v in cv2.meanStdDev(grey))
    saturated = float(np.count_nonzero(grey >= _SATURATED)) / grey.size
    if saturated >= _BLINDED_SHARE and mean >= 180:
        return BLINDED
    if model.contrast >= 3 * _UNIFORM_STD and std < max(_UNIFORM_STD, 0.1 * model.contrast):
        return COVERED
    if moved:
        return MOVED
    if std >= _UNIFORM_STD and sharpness(grey) < _DEFOCUS_RATIO * model.sharpness:
        return DEFOCUSED
    if changed_fraction >= VIEW_CHANGED:
        return MOVED
    return None


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
