"""Episodes: debouncing per-frame decisions into change episodes (DESIGN section 3).

Pure core. An episode starts after ``min_frames`` consecutive differing frames and ends
``event_gap_s`` seconds (of the caller's clock: video time in replay, monotonic time live)
after its last differing frame. A lasting change keeps differing, so it keeps its episode
open until the scene returns or the baseline is retaken (``close``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from scene_agent.detector import Detection

T = TypeVar("T")  # whatever the caller keeps with a frame (the image, its wall time, ...)


@dataclass(frozen=True, slots=True)
class Mark(Generic[T]):
    """One frame of interest inside an episode."""

    index: int
    time: float
    detection: Detection
    payload: T


@dataclass(frozen=True, slots=True)
class EpisodeStarted(Generic[T]):
    first: Mark[T]  # the first differing frame of the run that opened the episode


@dataclass(frozen=True, slots=True)
class EpisodeEnded(Generic[T]):
    first: Mark[T]
    last: Mark[T]  # the last differing frame
    peak: Mark[T]  # the differing frame with the highest score


class EpisodeTracker(Generic[T]):
    """Feeds on (index, time, detection) and reports episode starts and ends."""

    def __init__(self, min_frames: int, event_gap_s: float) -> None:
        if min_frames < 1:
            raise ValueError("min_frames must be at least 1")
        self.min_frames = min_frames
        self.event_gap_s = event_gap_s
        # The current run of differing frames while no episode is open.
        self._run_first: Mark[T] | None = None
        self._run_peak: Mark[T] | None = None
        self._run_length = 0
        self._first: Mark[T] | None = None
        self._last: Mark[T] | None = None
        self._peak: Mark[T] | None = None

    @property
    def is_open(self) -> bool:
        return self._first is not None

    @property
    def peak(self) -> Mark[T] | None:
        return self._peak

    def update(
        self, index: int, time: float, detection: Detection, payload: T
    ) -> EpisodeStarted[T] | EpisodeEnded[T] | None:
        """Account for one frame; returns the start or end it causes, if any."""
        if self._first is None:
            return self._update_idle(index, time, detection, payload)
        if detection.differs:
            mark = Mark(index, time, detection, payload)
            self._last = mark
            if self._peak is None or detection.score > self._peak.detection.score:
                self._peak = mark
            return None
        assert self._last is not None
        if time - self._last.time >= self.event_gap_s:
            return self.close()
        return None

    def _update_idle(
        self, index: int, time: float, detection: Detection, payload: T
    ) -> EpisodeStarted[T] | None:
        if not detection.differs:
            self._run_first = self._run_peak = None
            self._run_length = 0
            return None
        # Only the run's first frame and its best one are kept: payloads can be whole frames.
        mark = Mark(index, time, detection, payload)
        if self._run_first is None:
            self._run_first = mark
        if self._run_peak is None or detection.score > self._run_peak.detection.score:
            self._run_peak = mark
        self._run_length += 1
        if self._run_length < self.min_frames:
            return None
        self._first, self._last, self._peak = self._run_first, mark, self._run_peak
        self._run_first = self._run_peak = None
        self._run_length = 0
        return EpisodeStarted(self._first)

    def close(self) -> EpisodeEnded[T] | None:
        """End the open episode now (scene returned, or a new baseline); None if none is open."""
        self._run_first = self._run_peak = None
        self._run_length = 0
        if self._first is None:
            return None
        assert self._last is not None and self._peak is not None
        ended = EpisodeEnded(self._first, self._last, self._peak)
        self._first = self._last = self._peak = None
        return ended
