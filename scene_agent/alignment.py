"""Camera shake: aligns each working image to the reference before it is compared.

Pure core. Real shake is not only a translation (a jittering pole also rotates and
zooms the picture slightly), so the warp is affine: a phase correlation gives the
translation first (cheap, and robust to large shifts), and OpenCV's ECC refines it to a
sub-pixel affine warp on a half-size image. A steady camera pays only for the phase
correlation: ECC runs while the camera has recently been seen to move.

A frame whose warp cannot be found, or is beyond the limits (``MAX_SHIFT`` of the
width, ``MAX_ROTATION_DEG``, ``MAX_SCALE``), is reported as not aligned: the camera
was moved (a tamper condition), not a flood of changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from scene_agent.imaging import Image

MAX_SHIFT = 0.12  # of the working width
MAX_ROTATION_DEG = 6.0
MAX_SCALE = 0.08
# Under one working pixel of shift a frame is taken as steady: the reference's spatial
# envelope (its 3x3 minimum and maximum) absorbs that much, and moving objects alone
# make the phase correlation report a few tenths of a pixel.
_STEADY_SHIFT = 1.0
_SHAKY_FRAMES = 25  # ECC keeps running this many frames after the last movement seen
_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 1e-3)
_SMALL_WIDTH = 180

Warp = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Alignment:
    """How a frame sits against the reference. ``warp`` is None for a steady frame."""

    aligned: bool
    warp: Warp | None
    shift: float  # pixels of the working image
    rotation_deg: float

    @property
    def moved(self) -> bool:
        return not self.aligned


STEADY = Alignment(aligned=True, warp=None, shift=0.0, rotation_deg=0.0)


class Aligner:
    """Finds the affine warp that maps the reference's pixels to a frame's.

    ``stable`` (optional, same size as the reference) marks the pixels that normally
    hold still: the warp is fitted to them alone, so swaying foliage or passing traffic
    does not drag it along.
    """

    def __init__(self, reference: Image, stable: Image | None = None) -> None:
        self._size = (int(reference.shape[1]), int(reference.shape[0]))
        self._factor = 1
        small = reference
        while small.shape[1] > _SMALL_WIDTH and small.shape[1] // 2 >= 32:
            small = cv2.pyrDown(small)
            self._factor *= 2
        self._small_size = (int(small.shape[1]), int(small.shape[0]))
        self._reference = small.astype(np.float32)
        self._window = cv2.createHanningWindow(self._small_size, cv2.CV_32F)
        self._stable: Image | None = None
        if stable is not None:
            small_stable = cv2.resize(stable, self._small_size, interpolation=cv2.INTER_AREA)
            small_stable = np.where(small_stable >= 128, 255, 0).astype(np.uint8)
            if cv2.countNonZero(small_stable) >= 0.1 * small_stable.size:
                self._stable = small_stable
                self._window = self._window * (small_stable.astype(np.float32) / 255)
        self._shaky = 0

    @property
    def shaky(self) -> bool:
        """The camera was seen to move recently: align every frame for a while."""
        return self._shaky > 0

    def _shrink(self, grey: Image) -> Image:
        small = grey
        for _ in range(int(math.log2(self._factor))):
            small = cv2.pyrDown(small)
        if (small.shape[1], small.shape[0]) != self._small_size:
            small = cv2.resize(small, self._small_size, interpolation=cv2.INTER_AREA)
        return small

    def align(self, grey: Image) -> Alignment:
        small = self._shrink(grey).astype(np.float32)
        # Copies: OpenCV 5's phaseCorrelate applies the window to its inputs in place.
        (dx, dy), _ = cv2.phaseCorrelate(self._reference.copy(), small.copy(), self._window)
        if math.hypot(dx, dy) * self._factor < _STEADY_SHIFT and self._shaky == 0:
            return STEADY
        warp: Warp = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
        try:
            _, found = cv2.findTransformECC(
                self._reference,
                small,
                warp,
                cv2.MOTION_AFFINE,
                _ECC_CRITERIA,
                self._stable,  # type: ignore[arg-type]  # None is allowed: no mask
                5,
            )
            warp = np.asarray(found, np.float32)
        except cv2.error:
            # No convergence: keep the translation if it is plausible at all.
            warp = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
        return self._judge(warp)

    def _judge(self, small_warp: Warp) -> Alignment:
        warp = small_warp.copy()
        warp[:, 2] *= self._factor
        shift = float(math.hypot(warp[0, 2], warp[1, 2]))
        rotation = math.degrees(math.atan2(float(warp[1, 0]), float(warp[0, 0])))
        scale = math.sqrt(abs(float(np.linalg.det(warp[:, :2]))))
        within = (
            shift <= MAX_SHIFT * self._size[0]
            and abs(rotation) <= MAX_ROTATION_DEG
            and abs(scale - 1) <= MAX_SCALE
            and bool(np.all(np.isfinite(warp)))
        )
        if not within:
            self._shaky = _SHAKY_FRAMES
            return Alignment(aligned=False, warp=None, shift=shift, rotation_deg=rotation)
        moving = shift >= _STEADY_SHIFT or abs(rotation) > 0.2
        self._shaky = _SHAKY_FRAMES if moving else max(0, self._shaky - 1)
        return Alignment(aligned=True, warp=warp, shift=shift, rotation_deg=rotation)

    def apply(self, grey: Image, warp: Warp) -> tuple[Image, Image]:
        """The frame warped onto the reference, and the mask of pixels the frame covers."""
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        warped = cv2.warpAffine(grey, warp, self._size, flags=flags, borderValue=0)
        ones = np.full((grey.shape[0], grey.shape[1]), 255, np.uint8)
        covered = cv2.warpAffine(
            ones, warp, self._size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
        )
        return warped, cv2.erode(covered, _EDGE)


_EDGE = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
