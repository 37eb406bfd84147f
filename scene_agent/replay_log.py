"""What a replay records: its result (episodes, tamper spans, per-frame scores), and the
episode log that turns tracker output into replay events and labelled frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scene_agent.episodes import EpisodeEnded, EpisodeStarted, Mark
from scene_agent.imaging import Image
from scene_agent.labels import encode_jpeg, label_frame
from scene_agent.tamper import TamperEnded, TamperStarted


@dataclass
class ReplayResult:
    frames: int
    fps: float
    threshold: float
    events: list[dict[str, Any]]
    scores: list[float] = field(default_factory=list)
    differs: list[bool] = field(default_factory=list)
    mse: list[float] = field(default_factory=list)
    tamper: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self, with_scores: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "frames": self.frames,
            "fps": self.fps,
            "threshold": self.threshold,
            "events": self.events,
            "tamper": self.tamper,
        }
        if with_scores:
            data["scores"] = [round(s, 3) for s in self.scores]
            data["differs"] = self.differs
            data["mse"] = [round(m, 3) for m in self.mse]
        return data

    def summary(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        still_open = sum(1 for e in self.events if e["end_frame"] is None)
        open_note = f" ({still_open} still open at the end)" if still_open else ""
        tamper_note = f", {len(self.tamper)} tamper span(s)" if self.tamper else ""
        line = (
            f"{self.frames} frames in {self.seconds:.1f} s ({rate:.0f} frames/s): "
            f"{len(self.events)} episode(s){open_note}{tamper_note} at threshold {self.threshold:g}"
        )
        advice = self.threshold_advice()
        return f"{line}\n{advice}" if advice else line

    def threshold_advice(self) -> str | None:
        """A note when the scene differs almost from the start to the end: either it
        really changed at once, or the threshold is too low for this scene."""
        if not self.events or not self.scores or self.frames < 10:
            return None
        first = self.events[0]
        last_end = self.events[-1]["end_frame"]
        covered = sum(
            (
                (e["end_frame"] if e["end_frame"] is not None else self.frames - 1)
                - e["start_frame"]
                + 1
            )
            for e in self.events
        )
        if first["start_frame"] > 0.1 * self.frames or covered < 0.8 * self.frames:
            return None
        ordered = sorted(self.scores)
        suggestion = ordered[int(0.9 * (len(ordered) - 1))] * 1.5
        still = " and is still open" if last_end is None else ""
        return (
            f"note: the scene differs from frame {first['start_frame']}{still}, in "
            f"{100 * covered / self.frames:.0f} % of the frames. If nothing really changed, "
            f"the threshold is too low for this scene: --threshold {suggestion:.3g} would "
            "have flagged only the top tenth of the scores"
        )


def _mark_json(mark: Mark[Any]) -> dict[str, Any]:
    return {
        "frame": mark.index,
        "time_s": round(mark.time, 3),
        "score": round(mark.detection.score, 3),
        "changed_fraction": round(mark.detection.changed_fraction, 5),
        "boxes": [list(b) for b in mark.detection.boxes],
    }


class EpisodeLog:
    """Turns tracker output into replay events, and optionally writes labelled frames."""

    def __init__(self, threshold: float, out_dir: Path | None, jpeg_quality: int) -> None:
        self.events: list[dict[str, Any]] = []
        self._threshold = threshold
        self._out_dir = out_dir
        self._quality = jpeg_quality
        self._epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def started(self, started: EpisodeStarted[Image | None]) -> None:
        first = started.first
        self.events.append(
            {
                "start_frame": first.index,
                "end_frame": None,
                "peak_frame": first.index,
                "peak_score": round(first.detection.score, 3),
                "start_time_s": round(first.time, 3),
                "end_time_s": None,
                "duration_s": None,
                "first": _mark_json(first),
            }
        )
        self.write(first, "start")

    def peak_so_far(self, peak: Mark[Image | None] | None) -> None:
        if peak is not None and self.events:
            self.events[-1]["peak_frame"] = peak.index
            self.events[-1]["peak_score"] = round(peak.detection.score, 3)

    def ended(self, ended: EpisodeEnded[Image | None]) -> None:
        event = self.events[-1]
        event.update(
            {
                "end_frame": ended.last.index,
                "end_time_s": round(ended.last.time, 3),
                "duration_s": round(ended.last.time - ended.first.time, 3),
            }
        )
        self.peak_so_far(ended.peak)
        self.write(ended.peak, "peak")

    def write(self, mark: Mark[Image | None], kind: str) -> None:
        if self._out_dir is None or mark.payload is None:
            return
        when = self._epoch + timedelta(seconds=mark.time)
        labelled = label_frame(mark.payload, mark.detection, when, self._threshold)
        path = self._out_dir / f"frame{mark.index:06d}-{kind}.jpg"
        path.write_bytes(encode_jpeg(labelled, self._quality))


def tamper_span(spans: list[dict[str, Any]], change: object, index: int) -> None:
    if isinstance(change, TamperStarted):
        spans.append({"start_frame": index, "end_frame": None, "reason": change.reason})
    elif isinstance(change, TamperEnded) and spans:
        spans[-1]["end_frame"] = index
