"""The change detector: scores a frame against the user's baseline.

Pure core: numpy and OpenCV image maths only; no camera, no files, no MQTT.

Per frame:
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

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from cv2.typing import MatLike

from scene_agent.config import DetectorSettings

Image = MatLike  # numpy arrays as OpenCV takes and returns them (uint8 frames)
Box = tuple[int, int, int, int]

# Regions smaller than this (in working-image pixels, after despeckling) are not boxed.
_MIN_BOX_PIXELS = 6
_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
_MERGE_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


@dataclass(frozen=True, slots=True)
class Detection:
    """What the detector says about one frame."""

    score: float
    changed_fraction: float
    boxes: tuple[Box, ...]
    differs: bool


def working_size(frame_shape: Sequence[int], width: int) -> tuple[int, int]:
    """(width, height) of the working image for a frame; never upscales."""
    height, frame_width = int(frame_shape[0]), int(frame_shape[1])
    if frame_width <= width:
        return frame_width, height
    return width, max(1, round(height * width / frame_width))


def to_grey(frame: Image) -> Image:
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def preprocess(frame: Image, size: tuple[int, int], blur: int) -> Image:
    """Grey, area-averaged down to ``size``, Gaussian-blurred."""
    grey = to_grey(frame)
    if (grey.shape[1], grey.shape[0]) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    if blur > 1:
        grey = cv2.GaussianBlur(grey, (blur, blur), 0)
    return grey


def _quartiles(image: Image, mask: Image | None) -> tuple[float, float, float]:
    """Lower quartile, median and upper quartile of the grey levels, from a histogram."""
    hist = cv2.calcHist([image], [0], mask, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist)
    q1, q2, q3 = np.searchsorted(cdf, cdf[-1] * np.array([0.25, 0.5, 0.75]))
    return float(q1), float(q2), float(q3)


class Reference:
    """A preprocessed baseline, ready to compare frames against."""

    def __init__(self, image: Image, settings: DetectorSettings, mask: Image | None = None) -> None:
        self.frame_shape: tuple[int, ...] = image.shape
        self.size = working_size(image.shape, settings.width)
        self.grey = preprocess(image, self.size, settings.blur)
        self._grey_f = self.grey.astype(np.float32)
        if mask is not None:
            resized = cv2.resize(mask, self.size, interpolation=cv2.INTER_NEAREST)
            self.mask: Image | None = np.where(resized > 0, 255, 0).astype(np.uint8)
            self.watched = int(cv2.countNonZero(self.mask))
        else:
            self.mask = None
            self.watched = self.size[0] * self.size[1]
        if self.watched == 0:
            raise ValueError("the detector mask leaves no pixel to watch")
        self._quartiles = _quartiles(self.grey, self.mask)
        self._inlier_limit = float(settings.pixel_threshold)

    def relit(self, grey: Image) -> Image:
        """The baseline as it would look under the frame's global lighting.

        A gain and offset (frame ~= gain * baseline + offset) are estimated from the
        quartiles of both images, which an object covering less than a quarter of the
        scene barely moves, then refined by least squares over the pixels that agree
        with that first estimate, so the changed region does not pull the fit. The gain
        is limited to 0.5..2: a larger jump (lights off, a covered lens) is a change.
        The baseline is relit rather than the frame corrected, so that highlights the
        brighter frame clips at 255 are predicted clipped too.
        """
        fq1, fq2, fq3 = _quartiles(grey, self.mask)
        bq1, bq2, bq3 = self._quartiles
        gain = (fq3 - fq1) / (bq3 - bq1) if bq3 - bq1 >= 4 else 1.0
        gain = min(2.0, max(0.5, gain))
        offset = fq2 - gain * bq2
        frame_f = grey.astype(np.float32)
        agree = np.abs(frame_f - (gain * self._grey_f + offset)) < self._inlier_limit
        agree &= (grey > 2) & (grey < 253)  # clipped pixels say nothing about the gain
        if self.mask is not None:
            agree &= self.mask > 0
        if int(np.count_nonzero(agree)) >= 0.25 * self.watched:
            b = self._grey_f[agree]
            f = frame_f[agree]
            b_mean, f_mean = float(b.mean()), float(f.mean())
            var = float(np.dot(b - b_mean, b - b_mean))
            if var > 0:
                gain = min(2.0, max(0.5, float(np.dot(b - b_mean, f - f_mean)) / var))
                offset = f_mean - gain * b_mean
        return cv2.convertScaleAbs(self._grey_f, alpha=gain, beta=offset)


def median_frame(frames: Sequence[Image]) -> Image:
    """Per-pixel median of frames of one size: passers-by don't end up in the reference."""
    if not frames:
        raise ValueError("no frames to take a baseline from")
    if len(frames) == 1:
        return frames[0].copy()
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"baseline frames differ in size: {sorted(shapes)}")
    median: Image = np.median(np.stack(frames), axis=0).astype(np.uint8)
    return median


class Detector:
    """Scores frames against one reference. Owned by one thread; not thread-safe."""

    def __init__(self, settings: DetectorSettings, mask: Image | None = None) -> None:
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
        boxes = self._boxes(changed, frame.shape, ref.size) if changed_fraction > 0 else ()
        differs = score >= self.threshold and changed_fraction >= s.min_area
        return Detection(score, changed_fraction, boxes, differs)

    @staticmethod
    def _boxes(
        changed: Image, frame_shape: Sequence[int], size: tuple[int, int]
    ) -> tuple[Box, ...]:
        merged = cv2.dilate(changed, _MERGE_KERNEL)
        count, _, stats, _ = cv2.connectedComponentsWithStats(merged, connectivity=8)
        sx = int(frame_shape[1]) / size[0]
        sy = int(frame_shape[0]) / size[1]
        boxes: list[Box] = []
        for x, y, w, h, area in stats[1:count]:
            if area < _MIN_BOX_PIXELS:
                continue
            boxes.append(
                (
                    int(x * sx),
                    int(y * sy),
                    min(int(frame_shape[1]), round((x + w) * sx)) - int(x * sx),
                    min(int(frame_shape[0]), round((y + h) * sy)) - int(y * sy),
                )
            )
        boxes.sort(key=lambda b: b[2] * b[3], reverse=True)
        return tuple(boxes)
