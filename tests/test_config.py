"""Configuration: sources and precedence, the example file, and clear errors with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from scene_agent.cli import main
from scene_agent.config import Settings, load_settings, masked_dump
from scene_agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "scene-agent.example.yaml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("SCENE_AGENT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def no_secrets(tmp_path: Path) -> Path:
    return tmp_path / "no-secrets"


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(secrets_dir=no_secrets(tmp_path))
    assert s.mqtt.port == 1883
    assert s.mqtt.topic_prefix == "scene_agent"
    assert s.camera.id == "camera"
    assert s.web.host == "127.0.0.1"
    assert s.storage.data_dir == Path("data")


def test_example_file_loads_and_documents_every_key(tmp_path: Path) -> None:
    s = load_settings(EXAMPLE, secrets_dir=no_secrets(tmp_path))
    assert s.camera.source == "0"
    example = yaml.safe_load(EXAMPLE.read_text())

    def keys(model: type[BaseModel], data: dict[str, Any], prefix: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if name not in data:
                missing.append(prefix + name)
            elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                missing += keys(field.annotation, data[name], f"{prefix}{name}.")
        return missing

    assert keys(Settings, example, "") == []
    # The example shows the defaults.
    assert s.model_dump() == load_settings(secrets_dir=no_secrets(tmp_path)).model_dump()


def test_precedence_flags_env_yaml_secrets_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "mqtt__password").write_text("from-secret")
    (secrets / "mqtt__username").write_text("secret-user")
    (secrets / "mqtt__host").write_text("secret-host")
    cfg = write(
        tmp_path / "c.yaml",
        {
            "mqtt": {"host": "yaml-host", "port": 1884, "username": "yaml-user"},
            "camera": {"fps": 2},
        },
    )
    monkeypatch.setenv("SCENE_AGENT_MQTT__PORT", "1885")
    monkeypatch.setenv("SCENE_AGENT_DETECTOR__THRESHOLD", "40")
    s = load_settings(cfg, overrides={"detector": {"threshold": 50}}, secrets_dir=secrets)
    assert s.detector.threshold == 50  # flag beats env
    assert s.mqtt.port == 1885  # env beats yaml
    assert s.mqtt.host == "yaml-host"  # yaml beats secrets
    assert s.mqtt.username == "yaml-user"
    assert s.mqtt.password is not None
    assert s.mqtt.password.get_secret_value() == "from-secret"  # secrets beat defaults
    assert s.camera.fps == 2
    assert s.detector.min_frames == 3  # a flag for one key keeps the others


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "c.yaml", {"camera": {"id": "porch"}})
    monkeypatch.setenv("SCENE_AGENT_CONFIG", str(cfg))
    assert load_settings(secrets_dir=no_secrets(tmp_path)).camera.id == "porch"


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"mqtt": {"port": 70000}}, "mqtt.port", "less than or equal to 65535"),
        ({"mqtt": {"port": "abc"}}, "mqtt.port", "valid integer"),
        ({"mqtt": {"prot": 1}}, "mqtt.prot", "unknown setting"),
        ({"cameras": {}}, "cameras", "unknown setting"),
        ({"camera": {"id": "Bad Id!"}}, "camera.id", "pattern"),
        ({"camera": {"fps": 0}}, "camera.fps", "greater than 0"),
        ({"detector": {"threshold": -1}}, "detector.threshold", "greater than or equal to 0.1"),
        ({"detector": {"threshold": ".nan"}}, "detector.threshold", ""),
        ({"detector": {"blur": 4}}, "detector.blur", "must be odd"),
        ({"mqtt": {"protocol": "4"}}, "mqtt.protocol", "'3.1.1' or '5'"),
        ({"mqtt": {"tls": {"certfile": "c.pem"}}}, "mqtt.tls", "together"),
        ({"storage": {"jpeg_quality": 101}}, "storage.jpeg_quality", "100"),
    ],
)
def test_bad_values_name_the_field_and_reason(
    tmp_path: Path, data: dict[str, Any], field: str, reason: str
) -> None:
    cfg = write(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, secrets_dir=no_secrets(tmp_path))
    message = str(info.value)
    assert f"  {field}:" in message
    assert reason in message


def test_bad_environment_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENE_AGENT_CAMERA__FPS", "fast")
    with pytest.raises(ConfigError, match=r"camera\.fps"):
        load_settings(secrets_dir=no_secrets(tmp_path))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("mqtt: [1, 2", "invalid YAML"),
        ("- just\n- a list\n", "mapping"),
        (b"\xff\xfe\x00bad", "cannot be read"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: str | bytes, reason: str) -> None:
    cfg = tmp_path / "c.yaml"
    if isinstance(content, bytes):
        cfg.write_bytes(content)
    else:
        cfg.write_text(content)
    with pytest.raises(ConfigError, match=reason):
        load_settings(cfg, secrets_dir=no_secrets(tmp_path))
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.yaml", secrets_dir=no_secrets(tmp_path))


def test_password_never_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(
        tmp_path / "c.yaml",
        {
            "mqtt": {"password": "hunter2", "username": "u"},
            "camera": {"source": "rtsp://admin:pa55@192.0.2.1/s1"},
        },
    )
    s = load_settings(cfg, secrets_dir=no_secrets(tmp_path))
    assert "hunter2" not in repr(s)
    assert masked_dump(s)["mqtt"]["password"] == "***"
    assert main(["check-config", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "pa55" not in out
    assert "password: '***'" in out
    assert "rtsp://***:***@192.0.2.1/s1" in out
    bad2 = write(tmp_path / "bad2.yaml", {"mqtt": {"password": ["hunter3"]}})
    assert main(["check-config", "--config", str(bad2)]) == 2
    assert "hunter3" not in capsys.readouterr().err


def test_cli_reports_bad_config_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", {"mqtt": {"port": 0}, "camera": {"colour": "red"}})
    proc = subprocess.run(
        [sys.executable, "-m", "scene_agent", "check-config", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "mqtt.port: Input should be greater than or equal to 1" in proc.stderr
    assert "camera.colour: unknown setting" in proc.stderr
