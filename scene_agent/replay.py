"""``scene-agent replay``: the live agent's detector and episode logic over a recorded source.

Frames are scored as fast as they decode; time is video time (frame index / fps), so
``event_gap_s`` means the same as live.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from scene_agent.camera import FrameReader, Source, open_source
from scene_agent.config import DetectorSettings
from scene_agent.detector import Detector, Image, Observation
from scene_agent.episodes import EpisodeEnded, EpisodeStarted, EpisodeTracker
from scene_agent.errors import SourceError
from scene_agent.labels import decode_jpeg, encode_jpeg
from scene_agent.reference import SceneModel
from scene_agent.replay_log import EpisodeLog, ReplayResult, tamper_span
from scene_agent.tamper import TamperTracker

log = logging.getLogger(__name__)

DEFAULT_FPS = 25.0


def _frames_from(
    source: Source, start: int, count: int, opener: Callable[[Source], FrameReader]
) -> Iterator[Image]:
    """Up to ``count`` frames from frame ``start`` of the source (one extra pass)."""
    reader = opener(source)
    try:
        index = taken = 0
        while taken < count:
            image = reader.read()
            if image is None:
                return
            if index >= start:
                taken += 1
                yield image
            index += 1
    finally:
        reader.close()


def prepare_reference(
    detector: Detector,
    observations: Sequence[Observation],
    *,
    baseline: int | Image,
    count: int,
    window: int,
    describe: str,
) -> SceneModel:
    """Sets the detector's reference as replay's options say, and returns it.

    ``observations`` are the frames from the baseline's start. ``baseline`` an index: the
    model is learned from ``count`` frames from there. An image, or a single frame: that
    picture, whose normal variation is learned from the ``window`` frames from the same
    point (the first frames of the source, for an image).
    """
    if isinstance(baseline, int) and count > 1:
        learner = detector.learner()
        for seen in observations[:count]:
            learner.add(seen)
        if not learner.greys:
            raise SourceError(f"baseline frame {baseline} is past the end of {describe}")
        if len(learner.greys) < count:
            log.warning("only %d of %d baseline frames were available", len(learner.greys), count)
        detector.set_model(learner.finish())
    else:
        if isinstance(baseline, int):
            if not observations:
                raise SourceError(f"baseline frame {baseline} is past the end of {describe}")
            detector.set_baseline(observations[0])
        else:
            detector.set_baseline(baseline)
        if window > 1:
            detector.learn_tolerance(observations[:window])
    detector.learned.clear()
    return next(iter(detector.models.values()))


class Prefetcher:
    """Decodes the next frames in a thread while the caller scores the current one.

    Decoding (FFmpeg) and the detector's OpenCV calls both release the GIL, so on two
    cores they overlap. The queue is bounded: at most ``depth`` frames wait.
    """

    _END = object()

    def __init__(self, reader: FrameReader, depth: int = 4) -> None:
        self._reader = reader
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="replay-decode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self._reader.read()
                self._put(self._END if frame is None else frame)
                if frame is None:
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._error = exc
            self._put(self._END)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return

    def read(self) -> Image | None:
        item = self._queue.get()
        if item is self._END:
            if self._error is not None:
                raise self._error
            return None
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _learn_reference(
    detector: Detector,
    source: Source,
    reader: Prefetcher,
    *,
    baseline: int | Image,
    count: int,
    window: int,
    keep_pictures: bool,
    opener: Callable[[Source], FrameReader],
) -> Iterator[tuple[Observation, Image | None]]:
    """Sets the reference, and returns every frame of the pass to be judged.

    The frames the reference is learned from are read once, in the pass, when they are
    the first ones (kept small: working images, and JPEGs only for labelled output); a
    later baseline index needs a pass of its own.
    """
    needed = count if isinstance(baseline, int) and count > 1 else window
    buffered: list[tuple[Observation, bytes | None]] = []
    if isinstance(baseline, int) and baseline > 0:
        observations = [detector.observe(f) for f in _frames_from(source, baseline, needed, opener)]
    else:
        while len(buffered) < needed and (frame := reader.read()) is not None:
            jpeg = encode_jpeg(frame, 95) if keep_pictures else None
            buffered.append((detector.observe(frame), jpeg))
        observations = [seen for seen, _ in buffered]
    prepare_reference(
        detector,
        observations,
        baseline=baseline,
        count=count,
        window=window,
        describe=source.describe(),
    )
    return _pass(detector, buffered, reader)


def _pass(
    detector: Detector, buffered: list[tuple[Observation, bytes | None]], reader: Prefetcher
) -> Iterator[tuple[Observation, Image | None]]:
    for seen, jpeg in buffered:
        yield seen, decode_jpeg(jpeg) if jpeg is not None else None
    while (frame := reader.read()) is not None:
        yield detector.observe(frame), frame


def replay(
    source: Source,
    settings: DetectorSettings,
    *,
    baseline: int | Image = 0,
    baseline_frames: int | None = None,
    fps: float | None = None,
    mask: Image | None = None,
    out_dir: Path | None = None,
    jpeg_quality: int = 85,
    keep_scores: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    opener: Callable[[Source], FrameReader] = open_source,
) -> ReplayResult:
    """Run the detector and episode logic over every frame of ``source``."""
    detector = Detector(settings, mask)
    raw = opener(source)
    reader = Prefetcher(raw)
    rate = fps or raw.fps or DEFAULT_FPS
    window = max(1, round(settings.learn_s * rate))
    detector.learn_frames = window
    try:
        frames = _learn_reference(
            detector,
            source,
            reader,
            baseline=baseline,
            count=baseline_frames if baseline_frames is not None else window,
            window=window,
            keep_pictures=out_dir is not None,
            opener=opener,
        )
    except BaseException:
        reader.close()
        raw.close()
        raise
    tracker: EpisodeTracker[Image | None] = EpisodeTracker(
        settings.min_frames, settings.event_gap_s
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    episodes = EpisodeLog(detector.threshold, out_dir, jpeg_quality)
    tamper = TamperTracker(settings.tamper_s, settings.tamper_clear_s)
    result = ReplayResult(frames=0, fps=rate, threshold=detector.threshold, events=[])
    started_at = time.perf_counter()
    try:
        for seen, frame in frames:
            detection = detector.detect(seen)
            index = result.frames
            if keep_scores:
                result.scores.append(detection.score)
                result.differs.append(detection.differs)
                result.mse.append(detection.mse)
            tamper_span(result.tamper, tamper.update(index / rate, detection.tamper), index)
            change = tracker.update(
                index, index / rate, detection, frame if out_dir is not None else None
            )
            if isinstance(change, EpisodeStarted):
                episodes.started(change)
            elif isinstance(change, EpisodeEnded):
                episodes.ended(change)
            result.frames += 1
            if progress is not None:
                progress(result.frames, raw.frame_count)
    finally:
        reader.close()
        raw.close()
    if result.frames == 0:
        raise SourceError(f"{source.describe()}: no frame could be decoded")
    if tracker.is_open and tracker.peak is not None:
        # Still open at the end: end_frame stays null, the peak so far is reported.
        episodes.peak_so_far(tracker.peak)
        episodes.write(tracker.peak, "peak")
    result.events = episodes.events
    result.seconds = time.perf_counter() - started_at
    return result
