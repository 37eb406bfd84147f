"""The optional web page: live view, state, baseline, buttons, and the event gallery.

Flask, served by waitress (a thread pool: it fits the agent's thread model). The web
threads never touch the agent's state: they read a state snapshot the agent thread
hands over, read the event index through their own SQLite connection, and send every
action through the agent's inbox as a command — the same parsing, validation and
replies as MQTT (and the reply is published on MQTT too).

The live view is MJPEG (``multipart/x-mixed-replace``). One ``PreviewHub`` thread encodes
the newest camera frame at most ``web.preview_fps`` times a second, and only while
someone watches; every viewer gets the same JPEG bytes. Viewers are capped.

Security: bound to loopback by default; actions only by POST with a CSRF token header;
an optional access token (``web.token``) for everything but ``/healthz``; image routes
take only event ids the index knows; files are served only from inside the data dir.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, make_response, redirect, request
from waitress.server import create_server

from scene_agent.config import Settings
from scene_agent.errors import SceneAgentError
from scene_agent.inbox import Inbox, Message
from scene_agent.labels import decode_jpeg, encode_jpeg
from scene_agent.payloads import EVENT_ID_PATTERN, iso
from scene_agent.preview import BOUNDARY, PreviewHub
from scene_agent.store import EventStore
from scene_agent.topics import Topics

log = logging.getLogger(__name__)

__all__ = ["PreviewHub", "WebContext", "WebServer", "create_app"]

TOKEN_COOKIE = "scene_agent_token"  # noqa: S105 - a cookie name
COMMAND_TIMEOUT_S = 20.0
THUMB_WIDTH = 320
THUMB_CACHE = 256
ACTIONS = {
    "snapshot": "cmd/snapshot",
    "start": "cmd/start",
    "stop": "cmd/stop",
    "delete": "cmd/delete",
    "threshold": "threshold/set",
}


@dataclass
class WebContext:
    """What the web threads may use: all of it thread-safe."""

    settings: Settings
    topics: Topics
    inbox: Inbox
    hub: PreviewHub
    state: Callable[[], dict[str, Any]]  # the latest state snapshot from the agent thread
    data_dir: Path
    # The score history (unix time, highest score of that second or None), an immutable
    # tuple the agent thread replaces once a second.
    scores: Callable[[], tuple[tuple[float, float | None], ...]] = lambda: ()


MAX_OFFSET = 10_000_000
CONNECTION_LIMIT = 400
IDLE_TIMEOUT_S = 10
CLEANUP_S = 2


def _whole(text: str) -> int | None:
    """A whole number written in ASCII digits (``"²".isdigit()`` is true), or None."""
    if not text or len(text) > 12 or not all("0" <= c <= "9" for c in text):
        return None
    return int(text)


def _read_asset(name: str) -> bytes:
    return resources.files("scene_agent").joinpath("webui", name).read_bytes()


class _Thumbnails:
    """A small bounded cache of gallery thumbnails, keyed by event id."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


def create_app(ctx: WebContext) -> Flask:  # noqa: PLR0915 - one small function per route
    app = Flask("scene_agent", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    csrf = secrets.token_urlsafe(32)
    token = ctx.settings.web.token.get_secret_value() if ctx.settings.web.token else None
    thumbs = _Thumbnails(THUMB_CACHE)
    index_html = _read_asset("index.html").decode()
    assets = {
        "app.js": ("application/javascript", _read_asset("app.js")),
        "style.css": ("text/css", _read_asset("style.css")),
    }

    def events_store() -> EventStore:
        store = EventStore(ctx.data_dir, ctx.settings.storage)
        store.open()
        return store

    @app.before_request
    def check_access() -> Response | None:
        if request.path == "/healthz" or token is None:
            return None
        given = request.cookies.get(TOKEN_COOKIE, "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header.removeprefix("Bearer ")
        query = request.args.get("token")
        if query is not None and hmac.compare_digest(query.encode(), token.encode()):
            if request.path != "/":
                return None  # e.g. Home Assistant's MJPEG camera on /stream.mjpg?token=...
            # The page opened as /?token=...: keep it in a cookie, drop it from the address.
            response = make_response(redirect("/"))
            response.set_cookie(
                TOKEN_COOKIE, query, httponly=True, samesite="Strict", max_age=365 * 86400
            )
            return response
        if not hmac.compare_digest(given.encode(), token.encode()):
            return make_response(jsonify(ok=False, message="access token required"), 401)
        return None

    @app.after_request
    def harden(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
        )
        if token is not None:
            # Behind a token, nothing may be kept by a browser or a proxy cache.
            response.headers["Cache-Control"] = "no-store"
        return response

    def require_csrf() -> None:
        if not hmac.compare_digest(request.headers.get("X-CSRF-Token", "").encode(), csrf.encode()):
            abort(make_response(jsonify(ok=False, message="missing or wrong CSRF token"), 403))
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            abort(make_response(jsonify(ok=False, message="cross-site request refused"), 403))

    def run_command(name: str, payload: bytes) -> Response:
        answers: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1)
        ctx.inbox.put_command(
            Message(ctx.topics.command(name), payload, reply_to=answers.put_nowait)
        )
        try:
            reply = answers.get(timeout=COMMAND_TIMEOUT_S)
        except queue.Empty:
            return make_response(jsonify(ok=False, message="the agent did not answer"), 504)
        return make_response(jsonify(reply), 200 if reply.get("ok") else 400)

    @app.get("/")
    def index() -> Response:
        html = index_html.replace("{{csrf}}", csrf).replace(
            "{{camera}}", _escape(ctx.settings.camera.name)
        )
        response = make_response(html)
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/assets/<name>")
    def asset(name: str) -> Response:
        if name not in assets:
            abort(404)
        kind, body = assets[name]
        return Response(body, mimetype=kind)

    @app.get("/healthz")
    def healthz() -> Response:
        state = ctx.state()
        return jsonify(ok=True, camera=state.get("camera"), monitoring=state.get("monitoring"))

    @app.get("/api/scores")
    def api_scores() -> Response:
        state = ctx.state()
        points = [[round(t, 1), None if s is None else round(s, 3)] for t, s in ctx.scores()]
        return jsonify(threshold=state.get("threshold"), points=points)

    @app.get("/api/state")
    def api_state() -> Response:
        state = dict(ctx.state())
        state["viewers"] = ctx.hub.viewers
        return jsonify(state)

    @app.get("/api/events")
    def api_events() -> Response:
        limit = _whole(request.args.get("limit", "24"))
        offset = _whole(request.args.get("offset", "0"))
        if limit is None or offset is None or not 1 <= limit <= 100 or offset > MAX_OFFSET:
            return make_response(
                jsonify(
                    ok=False,
                    message=f"limit must be 1-100 and offset a whole number up to {MAX_OFFSET}",
                ),
                400,
            )
        store = events_store()
        try:
            events = store.recent(limit=limit, offset=offset)
            total = store.count()
        finally:
            store.close()
        return jsonify(
            total=total,
            events=[
                {
                    "id": e.id,
                    "time": iso(e.time),
                    "type": e.payload.get("type"),
                    "event_type": e.payload.get("event_type"),
                    "reason": e.payload.get("reason"),
                    "score": e.payload.get("score"),
                    "image": f"/events/{e.id}.jpg",
                    "thumb": f"/events/{e.id}/thumb.jpg",
                }
                for e in events
            ],
        )

    @app.post("/api/actions/<action>")
    def api_action(action: str) -> Response:
        require_csrf()
        name = ACTIONS.get(action)
        if name is None:
            return make_response(jsonify(ok=False, message=f"unknown action {action[:40]!r}"), 404)
        return run_command(name, request.get_data(cache=False))

    @app.post("/api/events/<event_id>/delete")
    def api_delete_event(event_id: str) -> Response:
        require_csrf()
        return run_command("cmd/delete", json.dumps({"id": event_id}).encode())

    def event_file(event_id: str) -> Path:
        if not EVENT_ID_PATTERN.fullmatch(event_id):
            abort(404)
        store = events_store()
        try:
            event = store.get(event_id)
            if event is None:
                abort(404)
            try:
                return store.image_path(event)
            except SceneAgentError:
                abort(404)
        finally:
            store.close()

    @app.get("/events/<event_id>.jpg")
    def event_image(event_id: str) -> Response:
        path = event_file(event_id)
        try:
            return Response(path.read_bytes(), mimetype="image/jpeg")
        except OSError:
            abort(404)

    @app.get("/events/<event_id>/thumb.jpg")
    def event_thumb(event_id: str) -> Response:
        path = event_file(event_id)

        def make() -> bytes:
            return encode_jpeg(decode_jpeg(path.read_bytes()), 75, THUMB_WIDTH)

        try:
            return Response(thumbs.get(event_id, make), mimetype="image/jpeg")
        except (OSError, ValueError):
            abort(404)

    @app.get("/baseline.jpg")
    def baseline() -> Response:
        try:
            body = (ctx.data_dir / "baseline.jpg").read_bytes()
        except OSError:
            abort(404)
        response = Response(body, mimetype="image/jpeg")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/stream.mjpg")
    def stream() -> Response:
        if not ctx.hub.join():
            return make_response(jsonify(ok=False, message="too many live views"), 503)
        response = Response(
            ctx.hub.stream(), mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    return app


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


class WebServer:
    """waitress serving the app in its own threads; ``stop`` closes it."""

    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        web = self._ctx.settings.web
        app = create_app(self._ctx)
        # Live views hold a thread each: room for all of them plus ordinary requests.
        # Idle connections are closed after IDLE_TIMEOUT_S (checked every CLEANUP_S), and
        # there is room for CONNECTION_LIMIT of them: waitress's defaults (100, 120 s, 30 s)
        # let about a hundred idle sockets lock out the page and /healthz for minutes.
        self._server = create_server(
            app,
            host=web.host,
            port=web.port,
            threads=web.max_streams + 4,
            ident="scene-agent",
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=IDLE_TIMEOUT_S,
            cleanup_interval=CLEANUP_S,
        )
        self._ctx.hub.start()
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self._thread.start()
        log.info("web page on http://%s:%d/", web.host, web.port)

    def _serve(self) -> None:
        try:
            self._server.run()
        except OSError:
            pass  # closed by stop()
        except Exception:
            log.exception("web server failed")

    def stop(self) -> None:
        self._ctx.hub.stop()
        if self._server is not None:
            self._server.close()
        if self._thread is not None:
            self._thread.join(2)
