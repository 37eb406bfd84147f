"""A real MJPEG-over-HTTP camera on loopback, for tests: the test decides what it shows."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

from scene_agent.detector import Image

BOUNDARY = "frame"


class MjpegCamera:
    """Serves ``http://127.0.0.1:<port>/stream.mjpg``; ``show()`` changes the picture."""

    def __init__(self, image: Image, fps: float = 15.0, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._jpeg = self._encode(image)
        self._fps = fps
        self._stopped = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    @staticmethod
    def _encode(image: Image) -> bytes:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        return bytes(buf)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def show(self, image: Image) -> None:
        jpeg = self._encode(image)
        with self._lock:
            self._jpeg = jpeg

    def _current(self) -> bytes:
        with self._lock:
            return self._jpeg

    def start(self) -> None:
        camera = self
        self._stopped.clear()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                with contextlib.suppress(OSError):
                    while not camera._stopped.is_set():
                        jpeg = camera._current()
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                        )
                        self.wfile.write(jpeg + b"\r\n")
                        self.wfile.flush()
                        camera._stopped.wait(1.0 / camera._fps)

            def log_message(self, *_args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
