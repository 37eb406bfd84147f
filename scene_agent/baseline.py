"""The baseline keeper: the reference, its stored picture and metadata, the learned
model of each camera mode, and a baseline being learned over a window of frames.

It sets the detector's references and keeps the store in step; it never publishes and
never replies: it returns what happened, and the agent tells MQTT and the caller.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from scene_agent.detector import Detector, Image, ModelLearner
from scene_agent.ids import iso, new_event_id
from scene_agent.imaging import median_frame
from scene_agent.labels import decode_jpeg, encode_jpeg
from scene_agent.reference import SceneModel
from scene_agent.statefiles import BaselineInfo, BaselineStore

log = logging.getLogger(__name__)

SNAPSHOT_TIMEOUT_S = 15.0  # beyond the window itself, for a camera that is slow or away
SNAPSHOT_PICTURES = 7  # full frames kept for the baseline picture's median


@dataclass
class Snapshot:
    """A baseline being learned: the model from every frame's small working image, the
    picture from the median of a few full frames spread over the window."""

    frames: int
    deadline: float
    learner: ModelLearner
    pictures: list[Image] = field(default_factory=list)
    seen: int = 0


class BaselineKeeper:
    """Owns the reference and keeps ``baseline.jpg``, ``baseline.json`` and the models
    in step with the detector. One owner thread."""

    def __init__(self, store: BaselineStore, detector: Detector) -> None:
        self._store = store
        self._detector = detector
        self.info: BaselineInfo | None = None
        self.picture: Image | None = None
        self.snapshot: Snapshot | None = None

    def restore(self) -> BaselineInfo | None:
        """The stored baseline and its learned models, if any can be used."""
        stored = self._store.load()
        if stored is None:
            return None
        jpeg, info = stored
        try:
            image = decode_jpeg(jpeg)
        except ValueError as exc:
            log.warning("stored baseline cannot be used: %s", exc)
            return None
        self._detector.set_baseline(image)
        for mode, data in self._store.load_models().items():
            try:
                model = SceneModel.from_bytes(data)
            except ValueError as exc:
                log.warning("stored %s reference model cannot be used: %s", mode, exc)
                continue
            self._detector.set_model(model, replace_all=False)
            log.info("%s reference model restored (%d frame(s))", mode, model.frames)
        self._detector.learned.clear()
        self.info, self.picture = info, image
        log.info("baseline %s from %s restored", info.id, info.taken_at)
        return info

    def take(self, image: Image, frames: int, model: SceneModel | None = None) -> BaselineInfo:
        """A new baseline: ``model`` learned over a window, or ``image`` alone (which
        learns its normal variation from the next frames). Replaces every mode's one."""
        if model is None:
            model = self._detector.set_baseline(image)
        else:
            self._detector.set_model(model)
        self._detector.learned.clear()
        now = datetime.now(UTC)
        info = BaselineInfo(
            id=new_event_id(now),
            taken_at=iso(now),
            frames=frames,
            width=int(image.shape[1]),
            height=int(image.shape[0]),
        )
        self.info, self.picture = info, image
        try:
            # Old models first: a crash half-way must not pair them with the new picture.
            self._store.clear_models()
            self._store.save(encode_jpeg(image, 95), info)
            if model.learned:
                self._store.save_model(model.mode, model.to_bytes())
        except OSError as exc:
            log.error("baseline could not be saved (kept in memory): %s", exc)  # noqa: TRY400
        log.info("new baseline %s (%d frame(s))", info.id, frames)
        return info

    def save_learned(self) -> None:
        """Store the models the detector learned since (a variation, a new mode)."""
        while self._detector.learned:
            model = self._detector.learned.pop(0)
            log.info("%s reference learned from %d frames", model.mode, model.frames)
            try:
                self._store.save_model(model.mode, model.to_bytes())
            except OSError as exc:
                log.error("reference model could not be saved (kept in memory): %s", exc)  # noqa: TRY400

    def start_snapshot(self, frames: int, fps: float) -> None:
        deadline = time.monotonic() + SNAPSHOT_TIMEOUT_S + frames / fps
        self.snapshot = Snapshot(frames, deadline, self._detector.learner())

    def collect(self, image: Image) -> tuple[Image, SceneModel, int] | None:
        """One more frame for the snapshot; the picture, the model and the number of
        frames once it has them all.

        Raises ValueError (and drops the snapshot) when the frames change size: the
        camera changed mode half-way.
        """
        pending = self.snapshot
        assert pending is not None
        try:
            pending.learner.add(image)
        except ValueError:
            self.snapshot = None
            raise
        if pending.seen % max(1, pending.frames // SNAPSHOT_PICTURES) == 0:
            pending.pictures.append(image)
        pending.seen += 1
        if pending.seen < pending.frames:
            return None
        self.snapshot = None
        return median_frame(pending.pictures), pending.learner.finish(), pending.frames

    def expired(self, now: float) -> bool:
        """True (and the snapshot dropped) when the camera gave too few frames in time."""
        if self.snapshot is not None and now > self.snapshot.deadline:
            self.snapshot = None
            return True
        return False
