"""The live agent: the composition root and the agent (main) thread (DESIGN section 2).

The agent thread owns all mutable state — monitoring flag, threshold, baseline, detector,
the open episode. At the detection rate it takes the newest frame, scores it, runs the
episode logic, stores and publishes. Between frames it drains the inbox (commands from
MQTT, connection and delivery notices, camera state), so nothing here needs a lock.

Nothing is lost: every event is written to the event store first and marked delivered
only when the broker acknowledged it (QoS 1). Whatever was not acknowledged is sent
again, oldest first, after every (re)connect.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal, assert_never

from scene_agent import __version__
from scene_agent.baseline import BaselineKeeper
from scene_agent.camera import Camera, Frame
from scene_agent.commands import (
    Command,
    CommandError,
    Delete,
    ListEvents,
    SetMonitoring,
    SetThreshold,
    Snapshot,
    parse_command,
)
from scene_agent.config import Settings
from scene_agent.detector import Detection, Detector, Image
from scene_agent.discovery import discovery_configs
from scene_agent.episodes import EpisodeEnded, EpisodeStarted, EpisodeTracker, Mark
from scene_agent.heartbeat import HEARTBEAT_FILE, write_heartbeat
from scene_agent.imagefiles import load_mask
from scene_agent.labels import decode_jpeg, encode_jpeg, label_frame
from scene_agent.mqtt import (
    Bus,
    CameraState,
    Connected,
    Delivered,
    Disconnected,
    Inbox,
    Message,
)
from scene_agent.outbox import STORAGE_ERRORS, Outbox, StorageHealth
from scene_agent.payloads import AgentState, event_payload, iso, new_event_id, on_off, reply_payload
from scene_agent.reference import SceneModel
from scene_agent.retained import RetainedState
from scene_agent.statefiles import BaselineInfo, BaselineStore, RuntimeState, RuntimeStore
from scene_agent.store import EventStore
from scene_agent.tamper import TamperEnded, TamperStarted, TamperTracker
from scene_agent.topics import Topics

log = logging.getLogger(__name__)

MAX_COMMANDS_PER_TICK = 200
SCORE_HISTORY_S = 600
FLOOD_LOG_INTERVAL_S = 10.0

FramePayload = tuple[Image, datetime]  # what the episode tracker keeps with a frame


class Agent:
    """One camera's agent. ``run`` blocks until ``stop`` is set; constructors do no I/O."""

    def __init__(
        self,
        settings: Settings,
        *,
        bus_factory: Callable[[Inbox, Topics], Bus],
        camera: Camera,
        inbox: Inbox | None = None,
        views: bool = False,
    ) -> None:
        """``views``: keep the state and score history for the web page."""
        self.settings = settings
        self.topics = Topics.for_settings(settings)
        self.inbox = inbox or Inbox()
        self._views = views
        data_dir = settings.storage.data_dir
        self._data_dir = data_dir
        self._events = EventStore(data_dir, settings.storage)
        self._baselines = BaselineStore(data_dir)
        self._runtime_store = RuntimeStore(data_dir)
        self._bus_factory = bus_factory
        self._camera = camera
        self._bus: Bus | None = None
        self._detector: Detector | None = None
        self._tracker: EpisodeTracker[FramePayload] = EpisodeTracker(
            settings.detector.min_frames, settings.detector.event_gap_s
        )
        self._runtime = RuntimeState(settings.detector.monitoring, settings.detector.threshold)
        self._keeper: BaselineKeeper | None = None
        self._camera_online = False
        self._connected = False
        self._health = StorageHealth()
        self._outbox = Outbox(self._events, self._health)
        self._score: float | None = None
        self._episode: tuple[str, datetime] | None = None  # start event id and time
        self._tamper = TamperTracker(settings.detector.tamper_s, settings.detector.tamper_clear_s)
        self._tamper_episode: tuple[str, datetime] | None = None
        self._mode: str | None = None
        self._learning = False
        self._last_seq = 0
        self._index = 0
        self._snapshot_reply: Callable[[bool, str, dict[str, Any]], None] | None = None
        self._fps = 0.0
        self._fps_window: list[float] = []
        self._last_state_at = 0.0
        self._last_preview_at = 0.0
        self._last_heartbeat_at = 0.0
        self._dropped_reported = 0
        self._flood_logged_at = -FLOOD_LOG_INTERVAL_S
        self._last_image: bytes | None = None
        self._baseline_jpeg: bytes | None = None  # as published (size-capped)
        self._retained = RetainedState()
        self._state_dirty = False
        self._runtime_dirty = False
        self.state_view: dict[str, Any] = {}  # for the web page: replaced, never changed
        # The web page's score sparkline: the highest score of each second, 10 minutes.
        self._scores: deque[tuple[float, float | None]] = deque(maxlen=SCORE_HISTORY_S)
        self.scores_view: tuple[tuple[float, float | None], ...] = ()
        self._second_peak: float | None = None
        self._last_second = 0.0

    def run(self, stop: threading.Event) -> None:
        self.start()
        try:
            self.loop(stop)
        finally:
            self.shutdown()

    def start(self) -> None:
        s = self.settings
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._outbox.open()
        # A baseline of one frame (or one restored from disk) learns the scene's normal
        # variation from the next learn_s seconds of frames at the detection rate.
        learn_frames = max(1, round(s.detector.learn_s * s.camera.fps))
        self._detector = Detector(s.detector, load_mask(s.detector.mask), learn_frames=learn_frames)
        stored = self._runtime_store.load()
        if stored is not None:
            self._runtime = stored
        self._detector.threshold = self._runtime.threshold
        self._keeper = BaselineKeeper(self._baselines, self._detector)
        if self._keeper.restore() is not None and self._keeper.picture is not None:
            self._baseline_jpeg = self._mqtt_jpeg(self._keeper.picture)
        log.info(
            "scene-agent %s: camera %r (%s), monitoring %s, threshold %g, data in %s",
            __version__,
            s.camera.id,
            self._camera.source.describe(),
            on_off(self._runtime.monitoring),
            self._runtime.threshold,
            self._data_dir,
        )
        self._bus = self._bus_factory(self.inbox, self.topics)
        self._snapshot_state()
        self._camera.start()
        self._bus.start()

    def _snapshot_state(self) -> None:
        """Hand the current state to other threads (the web page) as an immutable copy."""
        self.state_view = self.state().as_json()

    def shutdown(self) -> None:
        log.info("stopping")
        if self._runtime_dirty:
            self._flush_runtime()
        if self._camera is not None:
            self._camera.stop(timeout=2.0)
        if self._bus is not None:
            self._bus.stop((self.topics.availability, b"offline"))
        self._outbox.close()
        with_heartbeat = self._data_dir / HEARTBEAT_FILE
        with_heartbeat.unlink(missing_ok=True)
        log.info("stopped")

    # --- the loop -------------------------------------------------------------------------

    def loop(self, stop: threading.Event) -> None:
        assert self._camera is not None
        interval = 1.0 / self.settings.camera.fps
        next_due = time.monotonic()
        while not stop.is_set():
            self._drain_inbox()
            self._flush_changes()
            now = time.monotonic()
            self._housekeeping(now)
            if now < next_due:
                self._wait(next_due - now)
                continue
            frame = self._camera.latest.get()
            if frame is None or frame.seq == self._last_seq:
                self._wait(min(interval, 0.02))
                continue
            self._last_seq = frame.seq
            next_due = max(next_due + interval, now)
            self._process(frame, now)
            self._flush_changes()

    def _flush_changes(self) -> None:
        if self._runtime_dirty:
            self._flush_runtime()
        if self._state_dirty:
            self._flush_state()
        if self._views:
            self._snapshot_state()

    def _wait(self, seconds: float) -> None:
        self.inbox.wakeup.wait(seconds)
        self.inbox.wakeup.clear()

    def _housekeeping(self, now: float) -> None:
        if now - self._last_heartbeat_at >= 1.0:
            self._last_heartbeat_at = now
            try:
                write_heartbeat(self._data_dir / HEARTBEAT_FILE)
            except OSError as exc:
                self._health.failed("heartbeat not written", exc)
            self._outbox.retry_marks()
        if now - self._last_second >= 1.0:
            self._last_second = now
            self._scores.append((time.time(), self._second_peak))
            self._second_peak = None
            if self._views:
                self.scores_view = tuple(self._scores)  # replaced whole: safe to read
        if now - self._last_state_at >= self.settings.mqtt.state_interval_s:
            self._publish_state_json()
        if (
            self.inbox.dropped != self._dropped_reported
            and now - self._flood_logged_at >= FLOOD_LOG_INTERVAL_S
        ):
            # One line per interval, however long the flood: the log stays readable.
            log.warning(
                "command flood: %d command(s) dropped unanswered, queue full",
                self.inbox.dropped - self._dropped_reported,
            )
            self._dropped_reported = self.inbox.dropped
            self._flood_logged_at = now
        if self._keeper is not None and self._keeper.expired(now):
            reply, self._snapshot_reply = self._snapshot_reply, None
            if reply is not None:
                reply(False, "no frames from the camera: baseline not taken", {})

    # --- frames ---------------------------------------------------------------------------

    def _process(self, frame: Frame, now: float) -> None:
        assert self._detector is not None
        self._fps_window = [t for t in self._fps_window if now - t < 5.0] + [now]
        self._fps = (len(self._fps_window) - 1) / max(1e-6, now - self._fps_window[0])
        self._maybe_preview(frame.image, now)
        assert self._keeper is not None
        if self._keeper.snapshot is not None:
            self._collect_snapshot(frame.image)
        elif not self._detector.has_baseline and self.settings.detector.auto_baseline:
            self._set_baseline(frame.image, 1)
            log.info("no baseline was stored: took one from the first frame")
        if not self._runtime.monitoring or not self._detector.has_baseline:
            return
        detection = self._detector.detect(frame.image)
        self._note_reference(detection)
        self._score = detection.score
        if not detection.learning:
            self._second_peak = max(detection.score, self._second_peak or 0.0)
        wall = datetime.now(UTC)
        change = self._tracker.update(self._index, frame.monotonic, detection, (frame.image, wall))
        self._index += 1
        if isinstance(change, EpisodeStarted):
            self._emit_start(change.first)
        elif isinstance(change, EpisodeEnded):
            self._emit_end(change, wall)
        tamper = self._tamper.update(frame.monotonic, detection.tamper)
        if tamper is not None:
            self._emit_tamper(tamper, frame.image, detection, wall)

    def _note_reference(self, detection: Detection) -> None:
        """Mode switches and learning, logged once; learned models stored."""
        assert self._detector is not None
        if detection.mode != self._mode:
            if self._mode is not None:
                log.info("camera switched to %s mode", detection.mode)
            self._mode = detection.mode
            self._publish_state()
        if detection.learning != self._learning:
            self._learning = detection.learning
            if detection.learning:
                missing = detection.mode not in self._detector.models
                log.info(
                    "learning the %s %s from the next %g s of frames (not judged meanwhile)",
                    detection.mode,
                    "reference: the camera has none for this mode yet"
                    if missing
                    else "reference's normal variation",
                    self.settings.detector.learn_s,
                )
            self._publish_state()
        assert self._keeper is not None
        self._keeper.save_learned()

    def _maybe_preview(self, image: Image, now: float) -> None:
        interval = self.settings.mqtt.preview_interval_s
        if interval <= 0 or not self._connected or now - self._last_preview_at < interval:
            return
        self._last_preview_at = now
        self._publish(self.topics.preview, self._mqtt_jpeg(image), qos=0)

    def _mqtt_jpeg(self, image: Image) -> bytes:
        m = self.settings.mqtt
        return encode_jpeg(image, m.image_quality, m.image_max_width)

    # --- episodes and events --------------------------------------------------------------

    def _emit_start(self, first: Mark[FramePayload]) -> None:
        image, wall = first.payload
        event_id = new_event_id(wall)
        self._episode = (event_id, wall)
        self._runtime = replace(self._runtime, last_change=iso(wall))
        self._save_runtime()
        self._retained.want(self.topics.last_change_state, self._runtime.last_change or "")
        self._store_and_send(
            event_id, "start", wall, image, detection=first.detection, episode_id=event_id
        )
        self._publish_state()

    def _emit_end(self, ended: EpisodeEnded[FramePayload], wall: datetime) -> None:
        if self._episode is None:
            return
        episode_id, started_at = self._episode
        self._episode = None
        image, peak_wall = ended.peak.payload
        self._store_and_send(
            new_event_id(wall),
            "end",
            wall,
            image,
            detection=ended.peak.detection,
            episode_id=episode_id,
            started_at=started_at,
            peak_score=ended.peak.detection.score,
            label_time=peak_wall,
        )
        self._publish_state()

    def _emit_tamper(
        self,
        change: TamperStarted | TamperEnded,
        image: Image,
        detection: Detection,
        wall: datetime,
    ) -> None:
        event_id = new_event_id(wall)
        kind: Literal["start", "end"]
        if isinstance(change, TamperStarted):
            log.warning("tamper: %s", change.reason)
            self._tamper_episode = (event_id, wall)
            episode_id, started_at, kind = event_id, None, "start"
        else:
            log.info("tamper ended (%s)", change.reason)
            episode_id, started_at = self._tamper_episode or (event_id, wall)
            self._tamper_episode = None
            kind = "end"
        self._store_and_send(
            event_id,
            kind,
            wall,
            image,
            detection=detection,
            episode_id=episode_id,
            started_at=started_at,
            tamper_reason=change.reason,
        )
        self._publish_state()

    def _end_tamper(self) -> None:
        ended = self._tamper.reset()
        if ended is not None and self._camera is not None:
            frame = self._camera.latest.get()
            if frame is not None:
                empty = Detection(0.0, 0.0, (), differs=False)
                self._emit_tamper(ended, frame.image, empty, datetime.now(UTC))

    def _store_and_send(
        self,
        event_id: str,
        kind: Literal["start", "end"],
        when: datetime,
        image: Image,
        *,
        detection: Detection,
        episode_id: str,
        started_at: datetime | None = None,
        peak_score: float | None = None,
        label_time: datetime | None = None,
        tamper_reason: str | None = None,
    ) -> None:
        threshold = self._runtime.threshold
        labelled = label_frame(image, detection, label_time or when, threshold)
        payload = event_payload(
            event_id=event_id,
            camera_id=self.settings.camera.id,
            kind=kind,
            when=when,
            detection=detection,
            threshold=threshold,
            image=EventStore.image_relative(event_id, when),
            episode=episode_id,
            started_at=started_at,
            peak_score=peak_score,
            tamper_reason=tamper_reason,
        )
        jpeg = encode_jpeg(labelled, self.settings.storage.jpeg_quality)
        self._outbox.add(event_id, when, jpeg, payload)
        what = "change" if tamper_reason is None else f"tamper ({tamper_reason})"
        log.info("%s %s: event %s, score %.1f", what, kind, event_id, detection.score)
        self._last_image = self._mqtt_jpeg(labelled)
        self._flush_pending()
        self._retained.want(self.topics.events_image, self._last_image)
        self._publish_retained()

    def _flush_pending(self) -> None:
        """Send what the outbox has due, oldest first."""
        if not self._connected:
            return
        for event_id, payload in self._outbox.due():
            mid = self._publish(self.topics.events, json.dumps(payload).encode())
            if mid is None:
                return
            self._outbox.sending(mid, event_id)

    # --- baseline -------------------------------------------------------------------------

    def _set_baseline(
        self, image: Image, frames: int, model: SceneModel | None = None
    ) -> BaselineInfo:
        """A new baseline: ``model`` learned over a window, or ``image`` alone (which
        learns its normal variation from the next frames). Replaces every mode's one."""
        assert self._detector is not None
        ended = self._tracker.close()
        if ended is not None:
            self._emit_end(ended, datetime.now(UTC))
        self._end_tamper()
        assert self._keeper is not None
        info = self._keeper.take(image, frames, model)
        self._baseline_jpeg = self._mqtt_jpeg(image)
        self._retained.want(self.topics.baseline_image, self._baseline_jpeg)
        self._publish_state()
        return info

    def _collect_snapshot(self, image: Image) -> None:
        assert self._keeper is not None
        reply = self._snapshot_reply or (lambda _ok, _text, _extra: None)
        try:
            done = self._keeper.collect(image)
        except ValueError as exc:  # frames of different sizes: the camera changed mode
            self._snapshot_reply = None
            reply(False, f"baseline not taken: {exc}", {})
            return
        if done is None:
            return
        self._snapshot_reply = None
        picture, model, frames = done
        info = self._set_baseline(picture, frames, model)
        reply(True, f"baseline taken from {frames} frame(s)", info.as_dict())

    # --- inbox ----------------------------------------------------------------------------

    def _drain_inbox(self) -> None:
        while True:
            try:
                notice = self.inbox.notices.get_nowait()
            except queue.Empty:
                break
            self._on_notice(notice)
        for _ in range(MAX_COMMANDS_PER_TICK):
            try:
                message = self.inbox.commands.get_nowait()
            except queue.Empty:
                break
            self._on_message(message)

    def _on_notice(self, notice: Connected | Disconnected | Delivered | CameraState) -> None:
        if isinstance(notice, Connected):
            self._connected = True
            self._outbox.connection_changed()
            self._on_connected()
        elif isinstance(notice, Disconnected):
            self._connected = False
            self._outbox.connection_changed()  # unacknowledged events stay pending
        elif isinstance(notice, Delivered):
            if self._outbox.acknowledged(notice.mid):
                self._flush_pending()
        elif notice.online != self._camera_online:
            self._camera_online = notice.online
            self._publish_state()

    def _on_connected(self) -> None:
        """After every (re)connect: subscribe, then re-publish everything retained."""
        assert self._bus is not None
        filters = self.topics.subscriptions
        if self.settings.discovery.enabled:
            filters = (*filters, self.settings.discovery.status_topic)
        self._bus.subscribe(filters)
        self._announce()
        self._flush_pending()

    def _announce(self) -> None:
        """Discovery configs, availability and every retained state topic."""
        if self.settings.discovery.enabled:
            for config in discovery_configs(self.settings, self.topics):
                self._retained.want(config.topic, json.dumps(config.payload))
        self._retained.want(self.topics.availability, b"online")
        if self._runtime.last_change is not None:
            self._retained.want(self.topics.last_change_state, self._runtime.last_change)
        if self._baseline_jpeg is not None:
            self._retained.want(self.topics.baseline_image, self._baseline_jpeg)
        if self._last_image is None:
            self._last_image = self._newest_event_image()
        if self._last_image is not None:
            self._retained.want(self.topics.events_image, self._last_image)
        self._retained.reconnected()
        self._flush_state()

    def _newest_event_image(self) -> bytes | None:
        try:
            for event in self._events.recent(limit=1):
                return self._mqtt_jpeg(decode_jpeg(self._events.image_path(event).read_bytes()))
        except (*STORAGE_ERRORS, ValueError) as exc:
            log.warning("newest event image unreadable: %s", exc)
        return None

    def _on_message(self, message: Message) -> None:
        if (
            self.settings.discovery.enabled
            and message.topic == self.settings.discovery.status_topic
        ):
            if message.payload.strip() == b"online":
                log.info("Home Assistant is online: announcing again")
                self._announce()
            return
        name = self.topics.command_name(message.topic)
        if name is None:
            return
        command_name = name[:80]

        refused_response = None
        if message.response_topic is not None:
            refused_response = self.topics.response_topic_problem(message.response_topic)

        def reply(ok: bool, text: str, extra: dict[str, Any]) -> None:
            answer = reply_payload(command_name, ok, text, **extra)
            if message.reply_to is not None:
                try:
                    message.reply_to(answer)
                except Exception:
                    log.debug("web reply could not be handed over", exc_info=True)
            body = json.dumps(answer).encode()
            if message.response_topic and refused_response is None:
                self._publish(
                    message.response_topic, body, qos=1, correlation=message.correlation_data
                )
            else:
                self._publish(self.topics.reply, body, qos=1, correlation=message.correlation_data)

        if refused_response is not None:
            log.warning("refused %s: %s", command_name, refused_response)
            reply(False, f"not executed: {refused_response}", {})
            return
        if message.retained:
            # A retained command would run again at every (re)connect: a retained
            # cmd/stop would turn monitoring off at every restart.
            log.warning("refused retained %s", command_name)
            reply(
                False,
                "not executed: the command was retained by the broker (sent with the retain "
                "flag); send it without, and clear the retained one with an empty retained "
                "message",
                {},
            )
            return
        try:
            command = parse_command(name, message.payload)
        except CommandError as exc:
            log.warning("refused %s: %s", command_name, exc)
            reply(False, str(exc), {})
            return
        try:
            self._execute(command, reply)
        except (*STORAGE_ERRORS, ValueError) as exc:
            log.warning("command %s failed: %s", command_name, exc)
            reply(False, f"failed: {exc}", {})

    def _execute(
        self, command: Command, reply: Callable[[bool, str, dict[str, Any]], None]
    ) -> None:
        # Exhaustive: a new command type that is not handled here fails mypy.
        match command:
            case Snapshot():
                self._start_snapshot(command, reply)
            case SetMonitoring():
                self._set_monitoring(command.on)
                reply(True, f"monitoring {on_off(command.on)}", {"monitoring": command.on})
            case SetThreshold():
                assert self._detector is not None
                self._runtime = replace(self._runtime, threshold=command.value)
                self._detector.threshold = command.value
                self._save_runtime()
                self._publish_state()
                reply(True, f"threshold {command.value:g}", {"threshold": command.value})
            case Delete():
                self._delete(command, reply)
            case ListEvents():
                self._list(command, reply)
            case _:
                assert_never(command)

    def _list(
        self, command: ListEvents, reply: Callable[[bool, str, dict[str, Any]], None]
    ) -> None:
        events = [
            {
                "id": e.id,
                "time": iso(e.time),
                "type": e.payload.get("type"),
                "score": e.payload.get("score"),
                "image": e.image,
                "bytes": e.bytes,
            }
            for e in self._events.recent(limit=command.limit)
        ]
        total = self._events.count()
        reply(True, f"{len(events)} of {total} stored event(s)", {"events": events})

    def _start_snapshot(
        self, command: Snapshot, reply: Callable[[bool, str, dict[str, Any]], None]
    ) -> None:
        assert self._camera is not None and self._keeper is not None
        if self._keeper.snapshot is not None:
            reply(False, "a baseline is already being taken", {})
            return
        assert self._detector is not None
        frame = self._camera.latest.get()
        fps = self.settings.camera.fps
        frames = command.frames
        if frames is None:
            seconds = command.seconds or self.settings.detector.learn_s
            frames = max(1, round(seconds * fps))
        if frames == 1 and frame is not None and self._camera.online:
            info = self._set_baseline(frame.image, 1)
            reply(True, "baseline taken", info.as_dict())
            return
        self._keeper.start_snapshot(frames, fps)
        self._snapshot_reply = reply

    def _set_monitoring(self, on: bool) -> None:
        if on == self._runtime.monitoring:
            return
        self._runtime = replace(self._runtime, monitoring=on)
        if not on:
            self._score = None
            ended = self._tracker.close()
            if ended is not None:
                self._emit_end(ended, datetime.now(UTC))
            self._end_tamper()
        self._save_runtime()
        log.info("monitoring %s", on_off(on))
        self._publish_state()

    def _delete(self, command: Delete, reply: Callable[[bool, str, dict[str, Any]], None]) -> None:
        if command.id is not None:
            removed = self._events.delete(command.id)
            if removed == 0:
                reply(False, f"no stored event {command.id}", {"deleted": 0})
                return
        elif command.before is not None:
            removed = self._events.delete_before(command.before)
        else:
            removed = self._events.delete_all()
        self._outbox.deleted()
        self._publish_state()
        reply(True, f"deleted {removed} event(s)", {"deleted": removed})

    def _save_runtime(self) -> None:
        """Mark the runtime state for saving at the end of this loop turn."""
        self._runtime_dirty = True

    def _flush_runtime(self) -> None:
        self._runtime_dirty = False
        try:
            self._runtime_store.save(self._runtime)
        except OSError as exc:
            self._health.failed("runtime state not saved", exc)

    # --- publishing -----------------------------------------------------------------------

    def _publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        correlation: bytes | None = None,
    ) -> int | None:
        if not self._connected or self._bus is None:
            return None
        return self._bus.publish(
            topic, payload, qos=qos, retain=retain, correlation_data=correlation
        )

    def state(self) -> AgentState:
        info = self._keeper.info if self._keeper is not None else None
        return AgentState(
            monitoring=self._runtime.monitoring,
            camera_online=self._camera_online,
            baseline_id=info.id if info else None,
            baseline_taken_at=info.taken_at if info else None,
            score=self._score,
            threshold=self._runtime.threshold,
            change=self._tracker.is_open,
            events_stored=self._outbox.stored,
            fps=self._fps,
            version=__version__,
            tamper=self._tamper.reason,
            mode=self._mode or "colour",
            references=tuple(sorted(self._detector.models)) if self._detector else (),
            learning=self._learning,
        )

    def _publish_state(self) -> None:
        """Mark the state changed; it is published once per loop turn (a command flood
        sends one state update per turn, not one per command)."""
        self._state_dirty = True

    def _flush_state(self) -> None:
        """The state as retained topics; what changed (or was not sent yet) goes out."""
        self._state_dirty = False
        t = self.topics
        self._retained.want(t.monitoring_state, on_off(self._runtime.monitoring))
        self._retained.want(t.change_state, on_off(self._tracker.is_open))
        self._retained.want(t.camera_state, "online" if self._camera_online else "offline")
        self._retained.want(t.tamper_state, on_off(self._tamper.active))
        self._retained.want(t.threshold_state, f"{self._runtime.threshold:g}")
        self._publish_state_json()

    def _publish_state_json(self) -> None:
        self._last_state_at = time.monotonic()
        self._retained.want(self.topics.state, json.dumps(self.state().as_json()))
        self._retained.refresh(self.topics.state)
        self._publish_retained()

    def _publish_retained(self) -> None:
        for topic, payload in self._retained.due():
            if self._publish(topic, payload, retain=True) is None:
                return  # not connected: all of it goes out after the reconnect
            self._retained.sent(topic, payload)
