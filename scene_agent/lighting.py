"""Global lighting: the tone curve that maps the reference's grey levels to the frame's.

Pure core. What is absorbed: any global, smooth, increasing change of the grey levels
between the reference and the frame — auto-exposure, camera gain, a dimmer, a cloud
dimming the whole scene evenly, a slow exposure drift — from 1/5x to 5x, sudden or slow.
What is not: *local* light (a lamp lighting part of the room, a sun patch, a hard
shadow), a strongly non-monotonic tone change, or an infrared switch (that is the
day/night reference's job). Those remain in the score.

The curve is fitted to the frame, then inverted: the frame is brought back into the
reference's grey levels, so that a change scores the same in bright or dim light (the
score is normalised by the gain) and the learned tolerances apply unchanged.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from scene_agent.imaging import Image

SAMPLE_STEP = 3  # the curve has three parameters: one pixel in 3x3 is plenty to fit it
MIN_SLOPE = 0.2
MAX_SLOPE = 5.0

FloatLut = npt.NDArray[np.float32]
_LEVELS = np.arange(256, dtype=np.float64)
_POWERS = np.stack([np.ones(256), _LEVELS / 255, (_LEVELS / 255) ** 2], 1)
IDENTITY: FloatLut = _LEVELS.astype(np.float32)


def quartiles(image: Image, mask: Image | None) -> tuple[float, float, float]:
    """Lower quartile, median and upper quartile of the grey levels, from a histogram."""
    hist = cv2.calcHist([image], [0], mask, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist)
    q1, q2, q3 = np.searchsorted(cdf, cdf[-1] * np.array([0.25, 0.5, 0.75]))
    return float(q1), float(q2), float(q3)


class ToneCurve:
    """Fits, per frame, the curve from one reference image's grey levels to the frame's.

    A first gain and offset come from the quartiles of both images, which an object
    covering less than a quarter of the scene barely moves. Then a smooth curve
    (quadratic in the reference's level, which also follows the soft knee of colour
    channels clipping at 255) is fitted by least squares to the pixels that agree with
    that first guess, so that a changed region does not pull the fit. The slope must
    stay within 1/5..5 at every level; a larger jump (lights off, a covered lens) is not
    lighting. While the frame's quartiles stay exactly where they were (steady light:
    the common case) the previous curve is reused.
    """

    def __init__(self, reference: Image, mask: Image | None, agree_within: float) -> None:
        step = SAMPLE_STEP
        self._sample: npt.NDArray[np.uint8] = np.ascontiguousarray(
            reference[::step, ::step], np.uint8
        )
        self._mask_u8 = None if mask is None else np.ascontiguousarray(mask[::step, ::step])
        self._mask = None if self._mask_u8 is None else self._mask_u8 > 0
        self._watched = self._sample.size if self._mask is None else int(self._mask.sum())
        self._quartiles = quartiles(self._sample, self._mask_u8)
        self._agree_within = agree_within
        self._cache: tuple[tuple[float, float, float], FloatLut, FloatLut] | None = None

    def fit(self, grey: Image) -> tuple[FloatLut, FloatLut]:
        """(forward, inverse): reference level -> frame level, and frame level -> reference."""
        frame_sample: npt.NDArray[np.uint8] = np.ascontiguousarray(
            grey[::SAMPLE_STEP, ::SAMPLE_STEP], np.uint8
        )
        frame_quartiles = quartiles(frame_sample, self._mask_u8)
        if self._cache is not None and self._cache[0] == frame_quartiles:
            return self._cache[1], self._cache[2]
        forward = self._fit(frame_sample, frame_quartiles)
        # The curve is increasing, so it inverts by interpolation; levels outside its
        # range map to its ends (a clipped frame says "at least" or "at most").
        inverse = np.interp(_LEVELS, forward, _LEVELS).astype(np.float32)
        self._cache = (frame_quartiles, forward, inverse)
        return forward, inverse

    def _fit(
        self, frame_sample: npt.NDArray[np.uint8], frame_quartiles: tuple[float, float, float]
    ) -> FloatLut:
        fq1, fq2, fq3 = frame_quartiles
        bq1, bq2, bq3 = self._quartiles
        gain = (fq3 - fq1) / (bq3 - bq1) if bq3 - bq1 >= 4 and fq3 - fq1 >= 1 else 1.0
        gain = min(MAX_SLOPE, max(MIN_SLOPE, gain))
        offset = fq2 - gain * bq2
        first_guess = cv2.convertScaleAbs(self._sample, alpha=gain, beta=offset)
        agree = cv2.absdiff(frame_sample, first_guess) < self._agree_within * max(1.0, gain)
        agree &= (frame_sample > 2) & (frame_sample < 253)  # clipped pixels tell nothing
        if self._mask is not None:
            agree &= self._mask
        if int(np.count_nonzero(agree)) >= 0.25 * self._watched:
            base: npt.NDArray[np.uint8] = self._sample[agree]
            curve = _fit_curve(base, frame_sample[agree].astype(np.float64))
            if curve is not None:
                return curve
        return np.clip(gain * _LEVELS + offset, -1e3, 1e3).astype(np.float32) + _RAMP


# A tiny ramp keeps a constant stretch of the curve strictly increasing for inversion.
_RAMP = (_LEVELS * 1e-4).astype(np.float32)


def _fit_curve(base: npt.NDArray[np.uint8], frame: npt.NDArray[np.float64]) -> FloatLut | None:
    """Least-squares tone curve (frame level as a function of reference level).

    Pixels are summed per reference level first, so the fit solves a 3x3 system whatever
    the image size; the result equals the per-pixel least-squares fit.
    """
    counts = np.bincount(base, minlength=256).astype(np.float64)
    seen = np.flatnonzero(counts)
    if seen.size < 8:
        return None
    sums = np.bincount(base, weights=frame, minlength=256)
    ends = np.array([seen[0], seen[-1]], dtype=np.float64) / 255
    for degree in (2, 1):
        powers = _POWERS[:, : degree + 1]
        normal = (powers * counts[:, None]).T @ powers
        try:
            coeffs = np.linalg.solve(normal, powers.T @ sums)
        except np.linalg.LinAlgError:
            return None
        # Slope in levels per level; linear in the level, so its extremes over the levels
        # the reference has are at the ends.
        slope = coeffs[1] + (2 * coeffs[2] * ends if degree == 2 else 0.0)
        slope = np.atleast_1d(slope) / 255
        if slope.min() >= MIN_SLOPE and slope.max() <= MAX_SLOPE:
            curve = powers @ coeffs
            # Beyond the levels seen, continue straight with the end slopes (a quadratic
            # can turn back there); keeps the curve increasing over all 256 levels.
            lo, hi = int(seen[0]), int(seen[-1])
            curve[:lo] = curve[lo] - slope[0] * (lo - _LEVELS[:lo])
            curve[hi + 1 :] = curve[hi] + slope[-1] * (_LEVELS[hi + 1 :] - hi)
            lut: FloatLut = curve.astype(np.float32) + _RAMP
            return lut
    return None
