"""TLS and authentication against a real Mosquitto; secrets stay out of the logs."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt_helpers import AgentProcess, Broker, Recorder, wait_for

PASSWORD = "s3cret-Pa55word"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, Path]]:
    certs = tmp_path / "certs"
    certs.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=scene-agent test CA",
            cwd=certs)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=localhost", cwd=certs)  # fmt: skip
    (certs / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
            cwd=certs)  # fmt: skip
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "agent", PASSWORD],
        check=True,
        capture_output=True,
        timeout=30,
    )
    broker = Broker(
        tmp_path / "broker",
        extra_config=(
            f"cafile {certs / 'ca.crt'}\ncertfile {certs / 'server.crt'}\n"
            f"keyfile {certs / 'server.key'}\npassword_file {passwords}\n"
        ),
        anonymous=False,
    )
    broker.start()
    yield broker, certs / "ca.crt"
    broker.stop()


def env_for(broker: Broker, tmp_path: Path, ca: Path, password: str) -> dict[str, str]:
    return {
        "SCENE_AGENT_MQTT__HOST": "localhost",
        "SCENE_AGENT_MQTT__PORT": str(broker.port),
        "SCENE_AGENT_MQTT__USERNAME": "agent",
        "SCENE_AGENT_MQTT__PASSWORD": password,
        "SCENE_AGENT_MQTT__TLS__ENABLED": "true",
        "SCENE_AGENT_MQTT__TLS__CA_FILE": str(ca),
        "SCENE_AGENT_CAMERA__ID": "secure",
        "SCENE_AGENT_CAMERA__SOURCE": "demo",
        "SCENE_AGENT_CAMERA__LOOP": "true",
        "SCENE_AGENT_STORAGE__DATA_DIR": str(tmp_path / "data"),
    }


def test_tls_with_a_ca_file_and_password(tmp_path: Path, tls_broker: tuple[Broker, Path]) -> None:
    broker, ca = tls_broker
    agent = AgentProcess(tmp_path, env_for(broker, tmp_path, ca, PASSWORD))
    rec = Recorder(broker.port, "scene_agent/secure", ca_file=ca, credentials=("agent", PASSWORD))
    agent.start()
    try:
        rec.wait("availability", lambda m: m.payload == b"online", timeout=20)
        assert rec.command("cmd/list")["ok"] is True
    finally:
        assert agent.stop() == 0
        rec.close()
    assert PASSWORD not in agent.log()


def test_wrong_password_is_logged_without_the_password_and_the_agent_keeps_running(
    tmp_path: Path, tls_broker: tuple[Broker, Path]
) -> None:
    broker, ca = tls_broker
    wrong = "not-the-Pa55word"
    agent = AgentProcess(tmp_path, env_for(broker, tmp_path, ca, wrong))
    agent.start()
    try:
        assert wait_for(lambda: "refused the connection" in agent.log(), 20), agent.log()
        assert agent.alive()
        # It still detects: the heartbeat keeps being written.
        assert wait_for((tmp_path / "data" / "heartbeat").exists, 10)
    finally:
        agent.stop(signal.SIGTERM)
    assert wrong not in agent.log()
