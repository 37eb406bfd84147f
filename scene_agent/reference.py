"""The reference model: what the scene looks like, and how much it normally varies.

Pure core. A model is learned from a window of working images (grey, downscaled,
blurred; see ``imaging.preprocess``):

- ``median``: the per-pixel median of the window, each frame first aligned to the
  window (camera shake) and brought to one exposure (lighting): people passing
  through less than half of the window do not end up in it;
- ``tolerance``: per pixel, how far the scene normally strays from that median —
  ``TOLERANCE_SCALE`` times the median of the absolute deviations over the window,
  spread over the neighbourhood (a branch that swung through a pixel swings through
  its neighbours too). Swaying foliage, water, flicker and sensor noise get a wide
  tolerance; a still wall keeps a narrow one. Both are medians, so something that
  covered a pixel in fewer than half of the window's frames (a passer-by, or a hand
  that came in near the end of the window) teaches the model nothing.

A model from one image (a file, one frame) has no tolerance yet: the detector learns
it from the first window of live frames (``Detector``), where the scene's *temporal*
variation is measured around the frames' own median, so a lasting change that is
already there does not teach it anything.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from scene_agent.alignment import Aligner
from scene_agent.imaging import COLOUR, GREY, Image, median_frame
from scene_agent.lighting import ToneCurve

TOLERANCE_SCALE = 3.0
MIN_LEARN_FRAMES = 5
_SPREAD_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
_FORMAT = 2  # 1 also stored a global sharpness that nothing read

Tolerance = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SceneModel:
    """A reference at the detector's working size."""

    median: Image
    tolerance: Tolerance | None
    mode: str
    frames: int
    contrast: float  # standard deviation of the median's grey levels

    @property
    def size(self) -> tuple[int, int]:
        return int(self.median.shape[1]), int(self.median.shape[0])

    @property
    def learned(self) -> bool:
        return self.tolerance is not None

    def with_tolerance(self, tolerance: Tolerance, frames: int) -> SceneModel:
        return SceneModel(self.median, tolerance, self.mode, frames, self.contrast)

    def resized(self, size: tuple[int, int]) -> SceneModel:
        """The model at another working size (the working width setting changed)."""
        if size == self.size:
            return self
        median = cv2.resize(self.median, size, interpolation=cv2.INTER_AREA)
        tolerance = None
        if self.tolerance is not None:
            tolerance = np.asarray(
                cv2.resize(self.tolerance, size, interpolation=cv2.INTER_LINEAR), np.float32
            )
        return SceneModel(median, tolerance, self.mode, self.frames, self.contrast)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "median": np.asarray(self.median, np.uint8),
            "meta": np.array([_FORMAT, self.frames, self.contrast], np.float64),
            "mode": np.array(self.mode),
        }
        if self.tolerance is not None:
            arrays["tolerance"] = self.tolerance.astype(np.float16)
        np.savez_compressed(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SceneModel:
        """Raises ValueError for anything that is not a model this version wrote."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                median = np.ascontiguousarray(npz["median"], np.uint8)
                meta = npz["meta"]
                mode = str(npz["mode"])
                tolerance = npz["tolerance"].astype(np.float32) if "tolerance" in npz else None
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise ValueError(f"not a scene model: {exc}") from exc
        if meta.shape != (3,) or int(meta[0]) != _FORMAT:
            raise ValueError("not a scene model of this version")
        if median.ndim != 2 or mode not in (COLOUR, GREY):
            raise ValueError("not a scene model of this version")
        if tolerance is not None and tolerance.shape != median.shape:
            raise ValueError("scene model arrays differ in size")
        return cls(median, tolerance, mode, int(meta[1]), float(meta[2]))


def model_from_image(grey: Image, mode: str) -> SceneModel:
    """A model from one working image: no tolerance until it is learned from live frames."""
    return SceneModel(grey, None, mode, 1, float(np.std(grey)))


def learn_model(greys: Sequence[Image], mode: str, mask: Image | None = None) -> SceneModel:
    """A model (median and tolerance) from a window of working images of one size."""
    if not greys:
        raise ValueError("no frames to learn the scene from")
    if len(greys) < MIN_LEARN_FRAMES:
        return model_from_image(median_frame(greys), mode)
    # Aligned to the window's middle frame first: the median of frames from a shaking
    # camera would be a blur. Then aligned again to that median, which has no passer-by.
    anchor = median_frame(settle(greys, greys[len(greys) // 2], mask))
    settled = settle(greys, anchor, mask)
    median = median_frame(settled)
    tolerance = learn_tolerance(settled, median)
    return SceneModel(median, tolerance, mode, len(greys), float(np.std(median)))


def settle(greys: Sequence[Image], reference: Image, mask: Image | None) -> list[Image]:
    """Each image aligned to the reference and brought to its exposure.

    Pixels a shifted frame does not cover take the reference's value, so they add no
    variation.
    """
    aligner = Aligner(reference)
    curve = ToneCurve(reference, mask, agree_within=25)
    settled: list[Image] = []
    for grey in greys:
        image = grey
        alignment = aligner.align(grey)
        if alignment.warp is not None:
            warped, covered = aligner.apply(grey, alignment.warp)
            warped = np.where(covered > 0, warped, reference).astype(np.uint8)
            # Kept only if it fits better: things moving close to the lens can fool the
            # warp of a steady camera.
            if cv2.norm(warped, reference, cv2.NORM_L1) < cv2.norm(grey, reference, cv2.NORM_L1):
                image = warped
        _, inverse = curve.fit(image)
        settled.append(np.clip(cv2.LUT(image, inverse) + 0.5, 0, 255).astype(np.uint8))
    return settled


def learn_tolerance(greys: Sequence[Image], median: Image) -> Tolerance:
    """Per pixel, ``TOLERANCE_SCALE`` times the median of |frame - median| over the
    frames, spread to the neighbourhood."""
    deviations = np.stack([cv2.absdiff(g, median) for g in greys])
    rank = (len(greys) - 1) // 2
    spread = np.partition(deviations, rank, axis=0)[rank].astype(np.float32)
    return np.asarray(cv2.dilate(spread * TOLERANCE_SCALE, _SPREAD_KERNEL), np.float32)
