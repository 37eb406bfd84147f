"""The round-1 detector, frozen here as a row of the quality benchmark (not used by the agent).

It scored a frame against the user's baseline image, per frame (boxes left out here):
1. *Preprocess* to a small blurred grey image (``width`` pixels wide, Gaussian ``blur``):
   averaging down from full size removes most sensor noise and JPEG block artefacts,
   and makes the cost independent of the camera's resolution.
2. *Lighting guard* (optional, on by default): the baseline is "relit" with a gain and
   offset fitted robustly to the frame (see ``Reference.relit``). That cancels a global
   change of brightness or contrast between 0.5x and 2x (auto-exposure, camera gain, a
   cloud dimming the whole scene evenly), sudden or slow. It does not cancel *local*
   lighting (a lamp lighting half the room, a sun patch, moving shadows), a strongly
   non-linear tone change, or an infrared day/night switch, which changes the texture
   itself: those are reported as changes.
3. ``score`` = MSE between the two working images over the watched pixels (0..65025).
   ``changed_fraction`` = share of watched pixels whose difference exceeds
   ``pixel_threshold`` after despeckling; ``boxes`` = their regions, full-frame pixels.
4. A frame *differs* when ``score >= threshold`` and ``changed_fraction >= min_area``.

The baseline's working image and histogram are computed once, when it is set.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from cv2.typing import MatLike

from scene_agent.imaging import preprocess, working_size

Image = MatLike


@dataclass(frozen=True)
class PreviousSettings:
    """The round-1 defaults."""

    threshold: float = 12.0
    width: int = 320
    blur: int = 5
    pixel_threshold: int = 25
    min_area: float = 0.001
    lighting_guard: bool = True


Box = tuple[int, int, int, int]

_SAMPLE_STEP = 3  # the lighting guard fits its tone curve to one pixel in 3x3
_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))


@dataclass(frozen=True, slots=True)
class Detection:
    """What the detector says about one frame."""

    score: float
    changed_fraction: float
    boxes: tuple[Box, ...]
    differs: bool


def _quartiles(image: Image, mask: Image | None) -> tuple[float, float, float]:
    """Lower quartile, median and upper quartile of the grey levels, from a histogram."""
    hist = cv2.calcHist([image], [0], mask, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist)
    q1, q2, q3 = np.searchsorted(cdf, cdf[-1] * np.array([0.25, 0.5, 0.75]))
    return float(q1), float(q2), float(q3)


class Reference:
    """A preprocessed baseline, ready to compare frames against."""

    def __init__(self, image: Image, settings: PreviousSettings, mask: Image | None = None) -> None:
        self.frame_shape: tuple[int, ...] = image.shape
        self.size = working_size(image.shape, settings.width)
        self.grey = preprocess(image, self.size, settings.blur)
        if mask is not None:
            resized = cv2.resize(mask, self.size, interpolation=cv2.INTER_NEAREST)
            self.mask: Image | None = np.where(resized > 0, 255, 0).astype(np.uint8)
            self.watched = int(cv2.countNonZero(self.mask))
        else:
            self.mask = None
            self.watched = self.size[0] * self.size[1]
        if self.watched == 0:
            raise ValueError("the detector mask leaves no pixel to watch")
        # The tone curve has three parameters: one pixel in 3x3 is plenty to fit it.
        step = _SAMPLE_STEP
        self._sample: npt.NDArray[np.uint8] = np.ascontiguousarray(self.grey[::step, ::step])
        self._sample_mask_u8 = (
            None if self.mask is None else np.ascontiguousarray(self.mask[::step, ::step])
        )
        self._sample_mask = None if self._sample_mask_u8 is None else self._sample_mask_u8 > 0
        self._sample_watched = (
            self._sample.size if self._sample_mask is None else int(self._sample_mask.sum())
        )
        if self._sample_watched == 0:
            raise ValueError("the detector mask leaves too few pixels to watch")
        self._quartiles = _quartiles(self._sample, self._sample_mask_u8)
        self._inlier_limit = float(settings.pixel_threshold)
        self._levels = np.arange(256, dtype=np.float64)
        self._relit: tuple[tuple[float, float, float], Image] | None = None
        self._powers = np.stack([np.ones(256), self._levels / 255, (self._levels / 255) ** 2], 1)

    def relit(self, grey: Image) -> Image:
        """The baseline as it would look under the frame's global lighting.

        A first gain and offset (frame ~= gain * baseline + offset) come from the
        quartiles of both images, which an object covering less than a quarter of the
        scene barely moves. Then a smooth tone curve (quadratic in the baseline's grey
        level, which also follows the soft knee that colour channels clipping at 255
        put into grey) is fitted by least squares to the pixels that agree with that
        first estimate, so that a changed region does not pull the fit. The slope is
        limited to 0.5..2 at every level: a larger jump (lights off, a covered lens) is
        a change. The baseline is relit rather than the frame corrected, so highlights
        that a brighter frame clips are predicted clipped too.

        While the frame's quartiles stay exactly where they were (a steady scene under
        steady light: the common case), the previous frame's relit baseline is reused.
        """
        step = _SAMPLE_STEP
        frame_sample: npt.NDArray[np.uint8] = np.ascontiguousarray(grey[::step, ::step])
        quartiles = _quartiles(frame_sample, self._sample_mask_u8)
        if self._relit is not None and self._relit[0] == quartiles:
            return self._relit[1]
        relit = self._relight(frame_sample, quartiles)
        self._relit = (quartiles, relit)
        return relit

    def _relight(
        self, frame_sample: npt.NDArray[np.uint8], quartiles: tuple[float, float, float]
    ) -> Image:
        fq1, fq2, fq3 = quartiles
        bq1, bq2, bq3 = self._quartiles
        gain = (fq3 - fq1) / (bq3 - bq1) if bq3 - bq1 >= 4 else 1.0
        gain = min(2.0, max(0.5, gain))
        frame_f = frame_sample.astype(np.float32)
        first_guess = cv2.convertScaleAbs(self._sample, alpha=gain, beta=fq2 - gain * bq2)
        agree = cv2.absdiff(frame_sample, first_guess) < self._inlier_limit
        agree &= (frame_sample > 2) & (frame_sample < 253)  # clipped pixels tell nothing
        if self._sample_mask is not None:
            agree &= self._sample_mask
        curve = None
        if int(np.count_nonzero(agree)) >= 0.25 * self._sample_watched:
            curve = self._fit_curve(self._sample[agree], frame_f[agree])
        if curve is None:
            return cv2.convertScaleAbs(self.grey, alpha=gain, beta=fq2 - gain * bq2)
        return cv2.LUT(self.grey, curve)

    def _fit_curve(
        self, base: npt.NDArray[np.uint8], frame: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.uint8] | None:
        """Least-squares tone curve (frame level as a function of baseline level) as a LUT.

        Pixels are summed per baseline grey level first, so the fit solves a 3x3 system
        whatever the image size; the result equals the per-pixel least-squares fit.
        """
        counts = np.bincount(base, minlength=256).astype(np.float64)
        seen = np.flatnonzero(counts)
        if seen.size < 8:
            return None
        sums = np.bincount(base, weights=frame, minlength=256)
        ends = np.array([seen[0], seen[-1]], dtype=np.float64) / 255
        for degree in (2, 1):
            powers = self._powers[:, : degree + 1]
            normal = (powers * counts[:, None]).T @ powers
            try:
                coeffs = np.linalg.solve(normal, powers.T @ sums)
            except np.linalg.LinAlgError:
                return None
            # Slope in grey levels per level; linear in the level, so its extremes over
            # the levels the baseline has are at the ends. A lighting change keeps it
            # between 0.5 and 2; otherwise try the straight line, then give up rather
            # than bend the baseline into the change.
            slope = coeffs[1] + (2 * coeffs[2] * ends if degree == 2 else 0.0)
            slope = np.atleast_1d(slope) / 255
            if slope.min() >= 0.5 and slope.max() <= 2.0:
                lut: npt.NDArray[np.uint8] = np.clip(powers @ coeffs + 0.5, 0, 255).astype(np.uint8)
                return lut
        return None


class Detector:
    """Scores frames against one reference. Owned by one thread; not thread-safe."""

    def __init__(self, settings: PreviousSettings, mask: Image | None = None) -> None:
        self._settings = settings
        self._mask = mask
        self.threshold = settings.threshold
        self._reference: Reference | None = None

    @property
    def has_baseline(self) -> bool:
        return self._reference is not None

    def set_baseline(self, image: Image) -> None:
        self._reference = Reference(image, self._settings, self._mask)

    def clear_baseline(self) -> None:
        self._reference = None

    def detect(self, frame: Image) -> Detection:
        ref = self._reference
        if ref is None:
            raise RuntimeError("no baseline set")
        s = self._settings
        grey = preprocess(frame, ref.size, s.blur)
        expected = ref.relit(grey) if s.lighting_guard else ref.grey
        score = float(cv2.norm(grey, expected, cv2.NORM_L2SQR, ref.mask)) / ref.watched

        diff = cv2.absdiff(grey, expected)
        _, changed = cv2.threshold(diff, s.pixel_threshold, 255, cv2.THRESH_BINARY)
        if ref.mask is not None:
            changed = cv2.bitwise_and(changed, ref.mask)
        changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, _KERNEL)
        changed_fraction = cv2.countNonZero(changed) / ref.watched
        boxes: tuple[Box, ...] = ()  # not needed by the benchmarks
        differs = score >= self.threshold and changed_fraction >= s.min_area
        return Detection(score, changed_fraction, boxes, differs)
