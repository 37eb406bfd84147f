"""The episode state machine: debounce, gap, lasting changes, peaks, explicit close."""

from __future__ import annotations

from scene_agent.detector import Detection
from scene_agent.episodes import EpisodeEnded, EpisodeStarted, EpisodeTracker


def det(score: float, differs: bool | None = None) -> Detection:
    return Detection(score, 0.05 if score else 0.0, (), score >= 10 if differs is None else differs)


def feed(
    tracker: EpisodeTracker[int], scores: list[float], fps: float = 10.0, start: int = 0
) -> list[tuple[str, int, int | None, int | None]]:
    """Run scores through the tracker; report (kind, first, last, peak) frame indices."""
    out: list[tuple[str, int, int | None, int | None]] = []
    for offset, score in enumerate(scores):
        index = start + offset
        change = tracker.update(index, index / fps, det(score), index)
        if isinstance(change, EpisodeStarted):
            out.append(("start", change.first.index, None, None))
        elif isinstance(change, EpisodeEnded):
            out.append(("end", change.first.index, change.last.index, change.peak.index))
    return out


def test_needs_min_frames_consecutive_differing_frames() -> None:
    t: EpisodeTracker[int] = EpisodeTracker(min_frames=3, event_gap_s=1.0)
    assert feed(t, [0, 20, 20, 0, 20, 20, 0, 0]) == []
    assert not t.is_open
    assert feed(t, [20, 20, 20], start=8) == [("start", 8, None, None)]
    assert t.is_open


def test_start_reports_the_first_frame_of_the_run() -> None:
    t: EpisodeTracker[int] = EpisodeTracker(min_frames=4, event_gap_s=1.0)
    assert feed(t, [0, 0, 15, 30, 12, 11]) == [("start", 2, None, None)]


def test_ends_after_gap_in_video_time_with_last_and_peak() -> None:
    t: EpisodeTracker[int] = EpisodeTracker(min_frames=2, event_gap_s=0.5)  # 5 frames at 10 fps
    events = feed(t, [20, 40, 30, 0, 0, 0, 0, 0, 0])
    assert events == [("start", 0, None, None), ("end", 0, 2, 1)]
    assert not t.is_open


def test_short_dropouts_inside_the_gap_keep_one_episode() -> None:
    t: EpisodeTracker[int] = EpisodeTracker(min_frames=2, event_gap_s=0.5)
    events = feed(t, [20, 20, 0, 0, 0, 20, 0, 0, 0, 50, 0, 0, 0, 0, 0, 0])
    assert events == [("start", 0, None, None), ("end", 0, 9, 9)]


def test_lasting_change_stays_open() -> None:
    t: EpisodeTracker[int] = EpisodeTracker(min_frames=3, event_gap_s=0.5)
    events = feed(t, [20] * 500)
    assert events == [("start", 0, None, None)]
    assert t.is_open
    assert t.peak is not None


def test_close_ends_an_open_episode_and_resets_a_run() -> None:
    t: EpisodeTracker[int] = EpisodeTracker(min_frames=2, event_gap_s=10.0)
    feed(t, [20, 25, 20])
    ended = t.close()
    assert ended is not None
    assert (ended.first.index, ended.last.index, ended.peak.index) == (0, 2, 1)
    assert t.close() is None
    # A run cut by close() starts counting again.
    assert feed(t, [20], start=3) == []
    t.close()
    assert feed(t, [20], start=4) == []
    assert feed(t, [20], start=5) == [("start", 4, None, None)]


def test_min_frames_one_starts_immediately_and_gap_zero_ends_on_next_quiet_frame() -> None:
    t: EpisodeTracker[int] = EpisodeTracker(min_frames=1, event_gap_s=0.0)
    assert feed(t, [20, 0, 20, 0]) == [
        ("start", 0, None, None),
        ("end", 0, 0, 0),
        ("start", 2, None, None),
        ("end", 2, 2, 2),
    ]


def test_peak_covers_the_run_before_the_start() -> None:
    t: EpisodeTracker[int] = EpisodeTracker(min_frames=3, event_gap_s=0.1)
    events = feed(t, [90, 20, 20, 20, 0, 0])
    assert events[-1] == ("end", 0, 3, 0)


def test_payloads_travel_with_marks() -> None:
    t: EpisodeTracker[str] = EpisodeTracker(min_frames=1, event_gap_s=0.0)
    started = t.update(7, 0.7, det(20), "frame-7")
    assert isinstance(started, EpisodeStarted)
    assert started.first.payload == "frame-7"
    assert started.first.time == 0.7
