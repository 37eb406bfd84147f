"""The web page's routes and defences, with Flask's test client and a scripted agent."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient

from scene_agent.camera import LatestFrame
from scene_agent.config import Settings, load_settings
from scene_agent.labels import encode_jpeg
from scene_agent.mqtt import Inbox
from scene_agent.payloads import new_event_id, reply_payload
from scene_agent.store import EventStore
from scene_agent.topics import Topics
from scene_agent.web import (
    CLEANUP_S,
    IDLE_TIMEOUT_S,
    PreviewHub,
    WebContext,
    WebServer,
    create_app,
)
from tests.mqtt_helpers import free_port, port_open, wait_for

TOKEN = "let-me-in-0123456789"


class ScriptedAgent:
    """Answers commands from the inbox like the agent would (ok for known ones)."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.seen: list[tuple[str, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.inbox.wakeup.wait(0.05)
            self.inbox.wakeup.clear()
            while not self.inbox.commands.empty():
                message = self.inbox.commands.get_nowait()
                name = message.topic.split("/", 2)[2]
                self.seen.append((name, message.payload))
                if message.reply_to is not None:
                    message.reply_to(reply_payload(name, True, "done"))

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Settings, Inbox, Path]]:
    data = tmp_path / "data"
    settings = load_settings(
        overrides={"storage": {"data_dir": data}, "web": {"enabled": True}},
        secrets_dir=tmp_path / "none",
    )
    yield settings, Inbox(), data


SCORES = ((1000.0, 0.5), (1001.0, None), (1002.0, 31.25))


def make_client(
    settings: Settings, inbox: Inbox, data: Path, latest: LatestFrame | None = None
) -> tuple[FlaskClient, PreviewHub]:
    hub = PreviewHub(latest or LatestFrame(), fps=20, quality=70, max_viewers=2)
    ctx = WebContext(
        settings=settings,
        topics=Topics("scene_agent", settings.camera.id),
        inbox=inbox,
        hub=hub,
        state=lambda: {"monitoring": True, "camera": "online", "score": 1.5, "threshold": 12},
        data_dir=data,
        scores=lambda: SCORES,
    )
    return create_app(ctx).test_client(), hub


def csrf_of(client: FlaskClient) -> str:
    html = client.get("/").get_data(as_text=True)
    return html.split('name="csrf-token" content="')[1].split('"')[0]


def stored_event(data: Path, settings: Settings) -> str:
    with EventStore(data, settings.storage) as store:
        when = datetime.now(UTC)
        event_id = new_event_id(when)
        store.add(
            event_id,
            when,
            encode_jpeg(np.full((120, 160, 3), 90, np.uint8), 80),
            {"id": event_id, "type": "start", "score": 20.0},
        )
    return event_id


def test_page_state_events_and_images(setup: tuple[Settings, Inbox, Path]) -> None:
    settings, inbox, data = setup
    event_id = stored_event(data, settings)
    client, _ = make_client(settings, inbox, data)
    page = client.get("/")
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers
    assert client.get("/assets/app.js").status_code == 200
    assert client.get("/assets/../config.py").status_code == 404
    assert client.get("/api/state").get_json()["threshold"] == 12
    assert client.get("/api/scores").get_json() == {
        "threshold": 12,
        "points": [[1000.0, 0.5], [1001.0, None], [1002.0, 31.25]],
    }
    events = client.get("/api/events?limit=5").get_json()
    assert events["total"] == 1 and events["events"][0]["id"] == event_id
    image = client.get(f"/events/{event_id}.jpg")
    assert image.status_code == 200 and image.data.startswith(b"\xff\xd8")
    thumb = client.get(f"/events/{event_id}/thumb.jpg")
    assert thumb.status_code == 200 and thumb.data.startswith(b"\xff\xd8")
    assert client.get("/baseline.jpg").status_code == 404  # none taken yet
    assert client.get("/healthz").get_json()["ok"] is True


@pytest.mark.parametrize(
    "path",
    [
        "/events/20261126T081912345Z-a1b2c3.jpg",  # well formed, unknown
        "/events/..%2F..%2Fetc%2Fpasswd.jpg",
        "/events/../../etc/passwd.jpg",
        "/events/%2Fetc%2Fpasswd.jpg",
        "/events/baseline.jpg",
        "/events/x/thumb.jpg",
    ],
)
def test_image_routes_take_only_known_event_ids(
    setup: tuple[Settings, Inbox, Path], path: str
) -> None:
    settings, inbox, data = setup
    stored_event(data, settings)
    client, _ = make_client(settings, inbox, data)
    assert client.get(path).status_code == 404


def test_actions_need_post_and_the_csrf_token(setup: tuple[Settings, Inbox, Path]) -> None:
    settings, inbox, data = setup
    agent = ScriptedAgent(inbox)
    try:
        client, _ = make_client(settings, inbox, data)
        assert client.get("/api/actions/snapshot").status_code == 405
        assert client.post("/api/actions/snapshot").status_code == 403
        bad = client.post("/api/actions/snapshot", headers={"X-CSRF-Token": "guess"})
        assert bad.status_code == 403
        token = csrf_of(client)
        cross = client.post(
            "/api/actions/snapshot",
            headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status_code == 403
        assert agent.seen == []
        ok = client.post("/api/actions/snapshot", headers={"X-CSRF-Token": token})
        assert ok.status_code == 200 and ok.get_json()["command"] == "cmd/snapshot"
        client.post("/api/actions/delete", data="all", headers={"X-CSRF-Token": token})
        event_id = "20261126T081912345Z-a1b2c3"
        client.post(f"/api/events/{event_id}/delete", headers={"X-CSRF-Token": token})
        unknown = client.post("/api/actions/reboot", headers={"X-CSRF-Token": token})
        assert unknown.status_code == 404
        assert agent.seen == [
            ("cmd/snapshot", b""),
            ("cmd/delete", b"all"),
            ("cmd/delete", json.dumps({"id": event_id}).encode()),
        ]
    finally:
        agent.stop()


def test_token_guards_everything_but_healthz(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = load_settings(
        overrides={"storage": {"data_dir": data}, "web": {"enabled": True, "token": TOKEN}},
        secrets_dir=tmp_path / "none",
    )
    client, _ = make_client(settings, Inbox(), data)
    assert client.get("/healthz").status_code == 200
    for path in ("/", "/api/state", "/api/events", "/stream.mjpg", "/baseline.jpg"):
        assert client.get(path).status_code == 401, path
    assert client.get("/api/state", headers={"Authorization": "Bearer nope"}).status_code == 401
    authorised = client.get("/api/state", headers={"Authorization": f"Bearer {TOKEN}"})
    assert authorised.status_code == 200
    assert authorised.headers["Cache-Control"] == "no-store"
    login = client.get(f"/?token={TOKEN}")
    assert login.status_code == 302 and login.headers["Location"] == "/"
    assert "HttpOnly" in login.headers["Set-Cookie"]
    assert client.get("/api/state").status_code == 200  # the cookie now
    fresh, _ = make_client(settings, Inbox(), data)
    assert fresh.get(f"/api/state?token={TOKEN}").status_code == 200  # no redirect for the API


def test_live_stream_shares_one_encoder_and_caps_viewers(
    setup: tuple[Settings, Inbox, Path],
) -> None:
    settings, inbox, data = setup
    latest = LatestFrame()
    client, hub = make_client(settings, inbox, data, latest)
    hub.start()
    feeding = threading.Event()
    feeding.set()

    def feed() -> None:
        pause = threading.Event()
        while feeding.is_set():
            latest.put(np.full((90, 160, 3), 128, np.uint8))
            pause.wait(0.01)

    threading.Thread(target=feed, daemon=True).start()
    try:
        first = client.get("/stream.mjpg", buffered=False)
        second = client.get("/stream.mjpg", buffered=False)
        assert first.status_code == 200 and second.status_code == 200
        assert first.mimetype == "multipart/x-mixed-replace"
        assert client.get("/stream.mjpg").status_code == 503  # the cap is 2
        chunks_a: Iterator[bytes] = iter(first.response)  # type: ignore[arg-type]
        chunks_b: Iterator[bytes] = iter(second.response)  # type: ignore[arg-type]
        encoded_before, started = hub.encoded, time.monotonic()
        parts: list[bytes] = []
        for _ in range(8):
            parts += [next(chunks_a), next(chunks_b)]
        elapsed = time.monotonic() - started
        assert all(p.startswith(b"--scene-agent-frame") and b"\xff\xd8" in p for p in parts)
        # A 100 frames/s camera and two viewers, yet frames are encoded once each, at most
        # at the preview rate (20/s here): one encoder serves both viewers.
        assert hub.encoded - encoded_before <= 20 * elapsed + 2
        first.close()
        second.close()
        assert hub.viewers == 0
    finally:
        feeding.clear()
        hub.stop()


def test_bad_query_values(setup: tuple[Settings, Inbox, Path]) -> None:
    settings, inbox, data = setup
    client, _ = make_client(settings, inbox, data)
    for query in (
        "limit=0",
        "limit=1000",
        "limit=abc",
        "offset=-1",
        "limit=%C2%B2",  # "²": str.isdigit() says yes, int() says no
        "offset=%D9%A3",  # an Arabic-Indic three
        "offset=99999999999999999999",
        "limit=",
    ):
        assert client.get(f"/api/events?{query}").status_code == 400, query


def test_idle_connections_do_not_lock_out_healthz(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    settings = load_settings(
        overrides={"storage": {"data_dir": data}, "web": {"enabled": True, "port": port}},
        secrets_dir=tmp_path / "none",
    )
    ctx = WebContext(
        settings=settings,
        topics=Topics("scene_agent", settings.camera.id),
        inbox=Inbox(),
        hub=PreviewHub(LatestFrame(), fps=5, quality=70, max_viewers=2),
        state=lambda: {"monitoring": True, "camera": "online"},
        data_dir=data,
    )
    server = WebServer(ctx)
    server.start()
    idle: list[socket.socket] = []
    try:
        assert wait_for(lambda: port_open(port), 10)
        for _ in range(150):  # more than waitress's default limit of 100
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200
        # The idle ones are closed by the server after its idle timeout.
        idle[0].settimeout(IDLE_TIMEOUT_S + 3 * CLEANUP_S + 5)
        assert idle[0].recv(1) == b""
    finally:
        for s in idle:
            s.close()
        server.stop()
