"""The change detector: scores a frame against the reference model of the scene.

Pure core: numpy and OpenCV image maths only; no camera, no files, no MQTT.

Per frame:
1. *Preprocess* to a small blurred grey working image (``imaging.preprocess``), and
   tell the camera mode (colour, or grey: infrared at night) from its colourfulness.
   The reference of that mode is used (one per mode, ``reference.SceneModel``).
2. *Align* it to the reference (``alignment``: affine, sub-pixel): camera shake.
3. *Lighting*: bring it back to the reference's exposure with a fitted tone curve
   (``lighting``): global exposure and gain changes, slow or sudden, are absorbed, and
   the score does not grow with the gain.
4. ``score`` = the MSE of what remains beyond the scene's normal variation: per pixel,
   the distance from the reference's spatial envelope (its 3x3 minimum and maximum:
   sub-pixel shifts and small sway) less the learned tolerance (foliage, water, flicker,
   noise) and a noise floor, squared and averaged over the watched pixels. Quiet frames
   score near 0 in every scene. ``mse`` is the raw MSE against the median (the seed's
   measure on the working image). ``changed_fraction`` = share of watched pixels more
   than ``pixel_threshold`` beyond the tolerance after despeckling; ``boxes`` their
   regions in full-frame pixels.
5. *Tamper* (``tamper``): a covered, blinded or defocused lens, or a moved camera,
   is reported as such and never makes the frame differ.
6. A frame *differs* when ``score >= threshold`` and ``changed_fraction >= min_area``.

A reference taken from one image learns its tolerance from the first ``learn_frames``
frames it sees; a mode with no reference yet gets one learned the same way (when
``auto_learn``). Frames seen while learning are reported with ``learning`` set and
never differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from scene_agent.alignment import STEADY
from scene_agent.comparison import (
    SPREAD_CELLS,
    Box,
    PreparedReference,
    box_regions,
    compare,
    persistent,
    spread,
)
from scene_agent.config import DetectorSettings
from scene_agent.imaging import (
    Image,
    ModeTracker,
    chroma,
    median_frame,
    preprocess,
    to_grey,
    working_size,
)
from scene_agent.reference import (
    SceneModel,
    learn_model,
    learn_tolerance,
    model_from_image,
    settle,
)
from scene_agent.tamper import blank

__all__ = [
    "Box",
    "Detection",
    "Detector",
    "Image",
    "ModelLearner",
    "Observation",
    "median_frame",
    "preprocess",
    "to_grey",
    "working_size",
]


# A failed warp with this share of the view differing: the camera was moved.
_MOVED_CHANGED = 0.5


@dataclass(frozen=True, slots=True)
class Detection:
    """What the detector says about one frame."""

    score: float
    changed_fraction: float
    boxes: tuple[Box, ...]
    differs: bool
    mse: float = 0.0
    tamper: str | None = None  # this frame's tamper reason (see ``tamper``), if any
    learning: bool = False  # the reference is still being learned: nothing decided
    mode: str = "colour"


class Observation(NamedTuple):
    """A frame as the detector sees it: its working image, colourfulness and shape."""

    grey: Image
    chroma: float
    shape: tuple[int, ...]


@dataclass
class _Learner:
    """Working images collected to learn a reference (or its tolerance) from."""

    mode: str
    frames: int
    greys: list[Image] = field(default_factory=list)


class Detector:
    """Scores frames against the reference of their camera mode. One owner thread."""

    def __init__(
        self,
        settings: DetectorSettings,
        mask: Image | None = None,
        *,
        learn_frames: int = 0,
        auto_learn: bool = True,
    ) -> None:
        self._settings = settings
        self._mask = mask
        self.threshold = settings.threshold
        self.learn_frames = learn_frames
        self.auto_learn = auto_learn
        self._references: dict[str, PreparedReference] = {}
        self._modes = ModeTracker()
        self._learner: _Learner | None = None
        self._frame_shape: tuple[int, ...] | None = None
        self.learned: list[SceneModel] = []  # models learned since the owner last took them

    # --- references -----------------------------------------------------------------

    @property
    def has_baseline(self) -> bool:
        return bool(self._references)

    @property
    def models(self) -> dict[str, SceneModel]:
        return {mode: ref.model for mode, ref in self._references.items()}

    def size_for(self, frame_shape: Sequence[int]) -> tuple[int, int]:
        return working_size(frame_shape, self._settings.width)

    def working(self, frame: Image) -> Image:
        """The frame's working image (what models are learned from)."""
        return preprocess(frame, self.size_for(frame.shape), self._settings.blur)

    def observe(self, frame: Image) -> Observation:
        """What the detector needs of a frame: it can judge it later without the frame."""
        return Observation(self.working(frame), chroma(frame), tuple(frame.shape))

    def learner(self) -> ModelLearner:
        """Collects frames for a new reference model (``ModelLearner.finish``)."""
        return ModelLearner(self)

    def model_of(self, frames: Iterable[Image]) -> SceneModel:
        """A reference model learned from full frames of one size (not set)."""
        learner = self.learner()
        for frame in frames:
            learner.add(frame)
        return learner.finish()

    def set_baseline(self, image: Image | Observation) -> SceneModel:
        """One image as the reference of its mode; its tolerance is learned later."""
        seen = image if isinstance(image, Observation) else self.observe(image)
        model = model_from_image(seen.grey, _mode_of_chroma([seen.chroma]))
        self.set_model(model)
        return model

    def set_model(self, model: SceneModel, *, replace_all: bool = True) -> None:
        """Use ``model`` for its mode. A new baseline replaces every mode's reference
        unless ``replace_all`` is false (restoring the stored models of several modes)."""
        if replace_all:
            self._references.clear()
        self._references[model.mode] = PreparedReference(model, self._settings, self._mask)
        self._learner = None

    def learn_tolerance(self, frames: Iterable[Image | Observation]) -> SceneModel | None:
        """Learns the current reference's tolerance from these frames, at once."""
        learner = self.learner()
        for frame in frames:
            learner.add(frame)
        if len(learner.greys) < 2 or not self._references:
            return None
        mode = learner.mode
        ref = self._references.get(mode) or next(iter(self._references.values()))
        if ref.model.size != learner.greys[0].shape[::-1]:
            return None
        return self._finish_tolerance(ref, learner.greys)

    # --- per frame ------------------------------------------------------------------

    def detect(self, frame: Image | Observation) -> Detection:
        if not self._references:
            raise RuntimeError("no baseline set")
        seen = frame if isinstance(frame, Observation) else self.observe(frame)
        grey, shape = seen.grey, seen.shape
        if self._modes.mode is None:
            self._modes.mode = next(iter(self._references))
        mode = self._modes.mode
        if not blank(grey):
            # A covered or blinded lens has no colour either: it is not a night mode.
            mode = self._modes.update(seen.chroma)
            if self._modes.switching:
                # The camera may be switching to infrared or back: judged from the next
                # frame in the new mode on, against its own reference.
                return Detection(0.0, 0.0, (), differs=False, mode=mode)
        ref = self._references.get(mode)
        if ref is None and not self.auto_learn:
            ref = next(iter(self._references.values()))
        if ref is None:
            return self._learn(mode, grey, None)
        if ref.model.size != self.size_for(shape):
            # The camera's resolution changed: the model follows at the new size.
            ref = PreparedReference(
                ref.model.resized(self.size_for(shape)), self._settings, self._mask
            )
            self._references[ref.model.mode] = ref
        if ref.model.tolerance is None and self.learn_frames > 1:
            return self._learn(ref.model.mode, grey, ref)
        return self._score(grey, ref, shape, mode)

    def _learn(self, mode: str, grey: Image, ref: PreparedReference | None) -> Detection:
        frames = max(self.learn_frames, 1)
        if self._learner is None or self._learner.mode != mode:
            self._learner = _Learner(mode, frames)
        learner = self._learner
        learner.greys.append(grey)
        if len(learner.greys) >= learner.frames:
            self._learner = None
            if ref is None:
                model = learn_model(learner.greys, mode, self.watch_mask(learner.greys[0].shape))
                self._references[mode] = PreparedReference(model, self._settings, self._mask)
                self.learned.append(model)
            else:
                self._finish_tolerance(ref, learner.greys)
        return Detection(0.0, 0.0, (), differs=False, learning=True, mode=mode)

    def _finish_tolerance(self, ref: PreparedReference, greys: list[Image]) -> SceneModel:
        # Temporal variation around the frames' own median: a lasting change that is
        # already in view teaches the model nothing.
        settled = settle(greys, ref.model.median, ref.mask)
        model = ref.model.with_tolerance(
            learn_tolerance(settled, median_frame(settled)), len(greys)
        )
        self._references[model.mode] = PreparedReference(model, self._settings, self._mask)
        self.learned.append(model)
        return model

    def watch_mask(self, shape: Sequence[int]) -> Image | None:
        if self._mask is None:
            return None
        size = (int(shape[1]), int(shape[0]))
        return cv2.resize(self._mask, size, interpolation=cv2.INTER_NEAREST)

    def _score(
        self, grey: Image, ref: PreparedReference, frame_shape: Sequence[int], mode: str
    ) -> Detection:
        s = self._settings
        model = ref.model
        mse = float(cv2.norm(grey, model.median, cv2.NORM_L2SQR, ref.mask)) / ref.watched
        # Compared as it is first: a steady camera showing nothing new (the common case)
        # or one compact change needs no alignment. When the differences are spread over
        # the picture (as a shift makes them, along every edge) or the camera moved
        # lately, the frame is aligned too, and the comparison that explains it better
        # counts: things moving in front of a steady camera can fool the warp, and a
        # shaken frame is better explained aligned.
        best = compare(grey, ref, ref.mask, ref.watched, s.pixel_threshold)
        alignment = STEADY
        if ref.aligner.shaky or spread(best.changed) >= SPREAD_CELLS:
            alignment = ref.aligner.align(grey)
            if alignment.warp is not None:
                aligned, covered = ref.aligner.apply(grey, alignment.warp)
                valid = covered if ref.mask is None else cv2.bitwise_and(covered, ref.mask)
                watched = max(1, int(cv2.countNonZero(valid)))
                warped = compare(aligned, ref, valid, watched, s.pixel_threshold)
                if warped.score < best.score:
                    best = warped
        score, changed_fraction, changed = best.score, best.changed_fraction, best.changed
        # Beyond the shake limits and the view no longer matches: the camera was moved.
        # (Tamper has its own debounce: it is judged on this frame alone.)
        moved = alignment.moved and changed_fraction >= _MOVED_CHANGED
        tamper = ref.tamper.judge(grey, moved=moved, changed_fraction=changed_fraction)
        if ref.persist:
            score, changed_fraction, changed = persistent(best, ref)
        boxes = box_regions(changed, frame_shape, model.size) if changed_fraction > 0 else ()
        differs = tamper is None and score >= self.threshold and changed_fraction >= s.min_area
        return Detection(score, changed_fraction, boxes, differs, mse, tamper, False, mode)


def _mode_of_chroma(values: Sequence[float]) -> str:
    return ModeTracker(frames=1).update(float(np.median(values)) if values else 0.0)


class ModelLearner:
    """Working images (and colourfulness) of the frames a model is learned from.

    Keeps only the small working images, so a window of 1080p frames costs a few MB.
    """

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self.greys: list[Image] = []
        self._chroma: list[float] = []

    def add(self, frame: Image | Observation) -> None:
        seen = frame if isinstance(frame, Observation) else self._detector.observe(frame)
        if self.greys and seen.grey.shape != self.greys[0].shape:
            raise ValueError("the frames differ in size")
        self.greys.append(seen.grey)
        self._chroma.append(seen.chroma)

    @property
    def mode(self) -> str:
        return _mode_of_chroma(self._chroma)

    def finish(self) -> SceneModel:
        if not self.greys:
            raise ValueError("no frames to learn the scene from")
        mask = self._detector.watch_mask(self.greys[0].shape)
        return learn_model(self.greys, self.mode, mask)
