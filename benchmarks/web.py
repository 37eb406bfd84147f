"""The web page's cost: agent CPU per processed frame with 0, 1 and 5 live viewers.

Usage: python -m benchmarks.web   (needs Mosquitto and the 'bench' extra for the clip)

The agent (a child process) runs on a looping 1280x720 H.264 clip at 25 frames/s with
detection at 10 frames/s and the web page on; viewers are HTTP clients reading
``/stream.mjpg`` as fast as it comes (5 frames/s, the default preview rate).
Target: 5 viewers cost less than 30 % more CPU per processed frame than none.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import imageio_ffmpeg

from benchmarks.agent import cpu_seconds
from scene_agent.demo import DemoRenderer, DemoScene
from tests.mqtt_helpers import AgentProcess, Broker, Recorder, free_port, port_open, wait_for

WINDOW_S = 12.0


def make_clip(path: Path) -> None:
    scene = DemoScene(width=1280, height=720, frames=250, fps=25.0)
    renderer = DemoRenderer(scene)
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "rawvideo",
        "-pix_fmt", "bgr24", "-s", "1280x720", "-r", "25", "-i", "-", "-c:v", "libx264",
        "-preset", "veryfast", "-pix_fmt", "yuv420p", "-b:v", "4M", "-maxrate", "4M",
        "-bufsize", "4M", str(path),
    ]  # fmt: skip
    with subprocess.Popen(command, stdin=subprocess.PIPE) as proc:
        assert proc.stdin is not None
        for index in range(scene.frames):
            proc.stdin.write(renderer.frame(index).tobytes())
        proc.stdin.close()
        proc.wait()


class Viewer:
    """A live-view client on its own connection, reading as fast as frames come."""

    def __init__(self, url: str) -> None:
        self.bytes = 0
        self._stop = threading.Event()
        self._response = urllib.request.urlopen(url, timeout=10)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._response.read1(65536)
                if not chunk:
                    return
                self.bytes += len(chunk)
        except (OSError, ValueError, AttributeError):
            return  # closed by stop()

    def stop(self) -> None:
        self._stop.set()
        self._response.close()
        self._thread.join(5)


def viewer_count(state_url: str) -> int:
    with urllib.request.urlopen(state_url, timeout=5) as response:
        return int(json.loads(response.read())["viewers"])


def measure(agent: AgentProcess, rec: Recorder, url: str, viewers: int) -> tuple[float, float]:
    assert agent.process is not None
    watching = [Viewer(url) for _ in range(viewers)]
    try:
        pause = threading.Event()
        pause.wait(2.0)  # let the viewers connect and the preview thread settle
        since = rec.mark()
        cpu0, t0 = cpu_seconds(agent.process.pid), time.monotonic()
        wait_for(lambda: time.monotonic() - t0 >= WINDOW_S, WINDOW_S + 5, 0.2)
        cpu1, t1 = cpu_seconds(agent.process.pid), time.monotonic()
        fps = statistics.mean(
            json.loads(m.payload)["fps"]
            for m in rec.messages[since:]
            if m.topic == rec.base + "/state"
        )
        if viewers:
            assert all(v.bytes > 0 for v in watching), "a viewer got nothing"
    finally:
        for v in watching:
            v.stop()
    state_url = url.replace("/stream.mjpg", "/api/state")
    wait_for(lambda: viewer_count(state_url) == 0, 10, 0.1)
    return (cpu1 - cpu0) / (fps * (t1 - t0)) * 1000, fps


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = folder / "clip720.mp4"
        make_clip(clip)
        broker = Broker(folder / "broker")
        broker.start()
        web_port = free_port()
        agent = AgentProcess(
            folder,
            {
                "SCENE_AGENT_MQTT__PORT": str(broker.port),
                "SCENE_AGENT_MQTT__STATE_INTERVAL_S": "1",
                "SCENE_AGENT_CAMERA__ID": "web",
                "SCENE_AGENT_CAMERA__SOURCE": str(clip),
                "SCENE_AGENT_CAMERA__LOOP": "true",
                "SCENE_AGENT_CAMERA__FPS": "10",
                "SCENE_AGENT_STORAGE__DATA_DIR": str(folder / "data"),
                "SCENE_AGENT_WEB__ENABLED": "true",
                "SCENE_AGENT_WEB__PORT": str(web_port),
            },
        )
        rec = Recorder(broker.port, "scene_agent/web")
        agent.start()
        try:
            assert wait_for(lambda: port_open(web_port), 30)
            rec.wait("state", lambda m: json.loads(m.payload)["fps"] > 8, timeout=30)
            url = f"http://127.0.0.1:{web_port}/stream.mjpg"
            results = {n: measure(agent, rec, url, n) for n in (0, 1, 5)}
        finally:
            agent.stop()
            rec.close()
            broker.stop()
    base = results[0][0]
    print("agent CPU per processed frame, 1280x720 H.264 at 25 fps, detection at 10 fps")
    for viewers, (per_frame, fps) in results.items():
        print(
            f"   {viewers} viewer(s): {per_frame:.1f} ms CPU/frame at {fps:.1f} frames/s "
            f"({(per_frame / base - 1) * 100:+.0f} % vs none)"
        )
    print("   target: 5 viewers < +30 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
