"""Comparing a working image with a prepared reference. Pure core.

``PreparedReference`` is a scene model with what scoring needs computed once: its
spatial envelope (3x3 minimum and maximum: sub-pixel shifts and small sway), the
tolerance per pixel (learned variation plus the noise floor), the aligner fitted to the
pixels that hold still, the tone curve and the tamper check. ``compare`` gives the
residual beyond all that, its MSE and the changed pixels; ``persistent`` keeps what also
differed in the previous frame; ``boxes`` turns changed pixels into full-frame boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np
from cv2.typing import MatLike

from scene_agent.alignment import Aligner
from scene_agent.config import DetectorSettings
from scene_agent.imaging import Image
from scene_agent.lighting import IDENTITY, ToneCurve
from scene_agent.reference import SceneModel
from scene_agent.tamper import TamperCheck

Box = tuple[int, int, int, int]

# Regions smaller than this (in working-image pixels, after despeckling) are not boxed.
_MIN_BOX_PIXELS = 6
_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
_MERGE_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
_CLIPPED_HIGH = 250
_CLIPPED_LOW = 5
_PERSIST_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
_MID_GREY = 100.0
SPREAD_CELLS = 5  # of 16: differences this spread out may be a shifted camera
_MAX_EXPOSURE_SCALE = 4.0
_STABLE_TOLERANCE = 12.0  # pixels that vary less than this are what alignment uses


class PreparedReference:
    """A scene model with what scoring needs precomputed once."""

    def __init__(self, model: SceneModel, settings: DetectorSettings, mask: Image | None) -> None:
        self.model = model
        median = model.median
        if mask is not None:
            resized = cv2.resize(mask, model.size, interpolation=cv2.INTER_NEAREST)
            self.mask: Image | None = np.where(resized > 0, 255, 0).astype(np.uint8)
            self.watched = int(cv2.countNonZero(self.mask))
        else:
            self.mask = None
            self.watched = model.size[0] * model.size[1]
        if self.watched == 0:
            raise ValueError("the detector mask leaves no pixel to watch")
        stable: Image | None = None
        # Where the scene holds still, a change counts at once; where it normally moves
        # (foliage, water), it must persist a frame (``persistent``).
        self.steady: Image = np.full(median.shape, 255, np.uint8)
        if model.tolerance is not None:
            stable = np.where(model.tolerance < _STABLE_TOLERANCE, 255, 0).astype(np.uint8)
            self.steady = stable.copy()
            if self.mask is not None:
                stable = cv2.bitwise_and(stable, self.mask)
        self.aligner = Aligner(median, stable)
        self.curve = ToneCurve(median, self.mask, agree_within=float(settings.pixel_threshold))
        self.lighting = settings.lighting_guard
        self.tamper = TamperCheck(model)
        self.persist = settings.persistence
        self.previous: Image | None = None  # where the last frame differed, widened
        self.low = cv2.erode(median, _KERNEL).astype(np.float32)
        self.high = cv2.dilate(median, _KERNEL).astype(np.float32)
        tolerance = np.full(median.shape, float(settings.noise_floor), np.float32)
        if model.tolerance is not None:
            tolerance += model.tolerance
        self.tolerance = tolerance
        # Residuals are in the reference's grey levels; a dark reference (a dim scene,
        # an exposure that was still climbing) would make every change small, so they
        # are scaled to a mid-grey exposure: a change scores alike in any light.
        self.exposure_scale = min(
            _MAX_EXPOSURE_SCALE, max(1.0, _MID_GREY / max(1.0, float(np.mean(median))))
        )


def box_regions(
    changed: Image, frame_shape: Sequence[int], size: tuple[int, int]
) -> tuple[Box, ...]:
    """Boxes around the changed regions, in full-frame pixels, largest first."""
    # Nearby changed pixels are merged into one region before boxing (contours are
    # an order of magnitude cheaper than connected-component statistics here).
    merged = cv2.dilate(changed, _MERGE_KERNEL)
    contours, _ = cv2.findContours(merged, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    sx = int(frame_shape[1]) / size[0]
    sy = int(frame_shape[0]) / size[1]
    found: list[Box] = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if w * h < _MIN_BOX_PIXELS:
            continue
        x0, y0 = int(x * sx), int(y * sy)
        x1 = min(int(frame_shape[1]), round((x + w) * sx))
        y1 = min(int(frame_shape[0]), round((y + h) * sy))
        found.append((x0, y0, x1 - x0, y1 - y0))
    found.sort(key=lambda b: b[2] * b[3], reverse=True)
    return tuple(found)


def spread(changed: Image) -> int:
    """In how many cells of a 4x4 grid something changed."""
    if not cv2.countNonZero(changed):
        return 0
    cells = cv2.resize(changed, (4, 4), interpolation=cv2.INTER_AREA)
    return int(cv2.countNonZero(cells))


class Comparison(NamedTuple):
    score: float
    changed: Image
    changed_fraction: float
    residual: MatLike
    valid: Image | None
    watched: int


def persistent(now: Comparison, ref: PreparedReference) -> tuple[float, float, Image]:
    """Where the scene normally moves (a learned tolerance), only what also differed
    nearby in the previous frame counts: leaves that flick in and out of a pixel do not
    persist, an object (or a passer-by, whose body overlaps itself from one frame to the
    next) does. Where the scene holds still, and the camera too, a change counts at once:
    no delay there. A shaking camera leaves flickering residue along every edge, so then
    everything must persist."""
    previous = ref.previous
    ref.previous = cv2.dilate(now.changed, _PERSIST_KERNEL) if now.changed_fraction else None
    if ref.aligner.shaky:
        if previous is None:
            return 0.0, 0.0, np.zeros_like(now.changed)
        support = previous
    else:
        support = ref.steady if previous is None else cv2.bitwise_or(previous, ref.steady)
    valid = support if now.valid is None else cv2.bitwise_and(support, now.valid)
    score = float(cv2.norm(now.residual, cv2.NORM_L2SQR, valid)) / now.watched
    changed = cv2.bitwise_and(now.changed, support)
    return score, cv2.countNonZero(changed) / now.watched, changed


def compare(
    grey: Image, ref: PreparedReference, valid: Image | None, watched: int, pixel_threshold: float
) -> Comparison:
    residual = residual_of(grey, ref)
    score = float(cv2.norm(residual, cv2.NORM_L2SQR, valid)) / watched
    changed = changed_pixels(residual, pixel_threshold, valid)
    return Comparison(score, changed, cv2.countNonZero(changed) / watched, residual, valid, watched)


def residual_of(aligned: Image, ref: PreparedReference) -> MatLike:
    """Grey levels beyond the reference's envelope and tolerance, in reference units."""
    inverse = ref.curve.fit(aligned)[1] if ref.lighting else IDENTITY
    level = cv2.LUT(aligned, inverse)
    over = cv2.subtract(level, ref.high)
    under = cv2.subtract(ref.low, level)
    # A clipped frame pixel only says "at least" (or "at most") that bright.
    lowest, highest, _, _ = cv2.minMaxLoc(aligned)
    if highest >= _CLIPPED_HIGH:
        under[aligned >= _CLIPPED_HIGH] = 0
    if lowest <= _CLIPPED_LOW:
        over[aligned <= _CLIPPED_LOW] = 0
    beyond = cv2.subtract(cv2.max(over, under), ref.tolerance)
    _, residual = cv2.threshold(beyond, 0, 0, cv2.THRESH_TOZERO)
    if ref.exposure_scale != 1.0:
        residual = residual * np.float32(ref.exposure_scale)
    return residual


def changed_pixels(residual: MatLike, pixel_threshold: float, valid: Image | None) -> Image:
    _, changed = cv2.threshold(residual, pixel_threshold, 255, cv2.THRESH_BINARY)
    changed = changed.astype(np.uint8)
    if valid is not None:
        changed = cv2.bitwise_and(changed, valid)
    result: Image = cv2.morphologyEx(changed, cv2.MORPH_OPEN, _KERNEL)
    return result
