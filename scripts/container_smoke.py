"""The container's smoke test (run by scripts/docker-smoke after it built the image).

Starts Mosquitto on the host's loopback, writes a demo video file, runs the image with
--network=host and the file mounted read-only, and checks: `online` is published, an
event arrives, `healthcheck` passes inside, the process runs as a non-root user, and
`stop` ends it cleanly (exit code 0) with `offline` retained. Prints the timings.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scene_agent.demo import DemoScene, write_video
from tests.mqtt_helpers import Broker, Recorder

NAME = "scene-agent-smoke"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [*shlex.split(os.environ.get("SMOKE_PODMAN", "podman")), *args]
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)


def main() -> int:
    image = os.environ["SMOKE_IMAGE"]
    ulimits = shlex.split(os.environ.get("SMOKE_ULIMITS", ""))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        media = folder / "media"
        write_video(media / "clip.avi", DemoScene())
        media.chmod(0o755)
        (media / "clip.avi").chmod(0o644)
        broker = Broker(folder / "broker")
        broker.start()
        rec = Recorder(broker.port, "scene_agent/smoke")
        podman("rm", "-f", NAME, check=False)
        started = time.monotonic()
        podman(
            "run", "-d", "--name", NAME, "--network=host", *ulimits,
            "-v", f"{media}:/media:ro",
            "-e", "SCENE_AGENT_CAMERA__ID=smoke",
            "-e", "SCENE_AGENT_CAMERA__SOURCE=/media/clip.avi",
            "-e", "SCENE_AGENT_CAMERA__LOOP=true",
            "-e", "SCENE_AGENT_MQTT__HOST=127.0.0.1",
            "-e", f"SCENE_AGENT_MQTT__PORT={broker.port}",
            image,
        )  # fmt: skip
        try:
            rec.wait("availability", lambda m: m.payload == b"online", timeout=60)
            online_s = time.monotonic() - started
            print(f"container start to online: {online_s:.2f} s (target < 5 s)")
            event = rec.wait("events", timeout=60).json()
            print(f"event received: {event['event_type']} score {event['score']}")
            user = podman("exec", NAME, "id", "-u").stdout.strip()
            print(f"process runs as uid {user}")
            assert user != "0", "the agent runs as root"
            health = podman("exec", NAME, "scene-agent", "healthcheck", check=False)
            print(f"healthcheck inside: exit {health.returncode} ({health.stdout.strip()})")
            assert health.returncode == 0
            stopping = time.monotonic()
            podman("stop", "-t", "10", NAME)
            stop_s = time.monotonic() - stopping
            code = podman("inspect", "-f", "{{.State.ExitCode}}", NAME).stdout.strip()
            print(f"stop to exit: {stop_s:.2f} s (target < 5 s), exit code {code}")
            assert code == "0", podman("logs", NAME).stderr[-2000:]
            offline = rec.retained(broker.port, "availability")
            print(f"retained availability after stop: {offline!r}")
            assert offline == b"offline"
            config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
            print(f"image user {config.get('User')}, entrypoint {config.get('Entrypoint')}")
        finally:
            logs = podman("logs", NAME, check=False)
            Path(tmp, "container.log").write_text(logs.stdout + logs.stderr)
            podman("rm", "-f", NAME, check=False)
            rec.close()
            broker.stop()
    print("SMOKE OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
