"""Settings: one immutable tree, loaded from flags, environment, YAML, secrets and defaults.

Precedence (highest first), as in DESIGN section 6: command-line flags (passed in as
``overrides``), environment (``SCENE_AGENT_`` prefix, ``__`` nesting), a YAML file
(``--config`` or ``SCENE_AGENT_CONFIG``), secrets files (``/run/secrets``), defaults.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from scene_agent.errors import ConfigError

ENV_PREFIX = "SCENE_AGENT_"
CONFIG_ENV = "SCENE_AGENT_CONFIG"
DEFAULT_SECRETS_DIR = Path("/run/secrets")

_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraSettings(_Section):
    id: str = Field(
        default="camera",
        pattern=_ID_PATTERN,
        description="Short id used in topics and unique ids: lower-case letters, digits, _ and -.",
    )
    name: str = Field(default="Camera", min_length=1, max_length=100)
    source: str = Field(
        default="0",
        min_length=1,
        description="USB index (0), RTSP/HTTP URL, video file, or image pattern (frames/%06d.jpg).",
    )
    fps: float = Field(default=5.0, gt=0, le=60, description="Detection rate cap, frames/s.")
    loop: bool = Field(default=False, description="Restart a video file at its end.")
    retry_max_s: float = Field(
        default=30.0, ge=0.5, le=3600, description="Longest wait between camera reopen attempts."
    )


class TlsSettings(_Section):
    enabled: bool = False
    ca_file: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _client_cert_pair(self) -> TlsSettings:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("certfile and keyfile must be given together")
        return self


class MqttSettings(_Section):
    host: str = Field(default="localhost", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsSettings = TlsSettings()
    client_id: str | None = Field(default=None, max_length=128)
    keepalive: int = Field(default=60, ge=5, le=3600)
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    topic_prefix: str = Field(default="scene_agent", pattern=r"^[^#+\s]+$")
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[^#+\s]+$")
    image_max_width: int = Field(
        default=640, ge=64, le=4096, description="Published JPEGs are scaled down to this width."
    )
    image_quality: int = Field(default=70, ge=10, le=100)
    preview_interval_s: float = Field(
        default=0, ge=0, le=3600, description="Seconds between live preview JPEGs; 0 = off."
    )
    state_interval_s: float = Field(
        default=10, ge=1, le=3600, description="Seconds between state refreshes (score, fps)."
    )

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: Any) -> Any:
        # YAML and env readers turn `5` into a number; the setting is a version label.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return "5" if value == 5 else str(value)
        return value


class DetectorSettings(_Section):
    monitoring: bool = Field(default=True, description="Monitoring on at first start.")
    threshold: float = Field(
        default=10.0,
        ge=0.1,
        le=65025,
        description="Score (MSE beyond the scene's normal variation) at which a frame differs.",
    )
    min_frames: int = Field(default=3, ge=1, le=1000)
    event_gap_s: float = Field(default=5.0, ge=0, le=86400)
    width: int = Field(default=320, ge=32, le=1920, description="Working width in pixels.")
    blur: int = Field(default=5, ge=1, le=31, description="Gaussian kernel size (odd).")
    pixel_threshold: int = Field(
        default=15,
        ge=1,
        le=255,
        description="Grey levels beyond the normal variation for a pixel to count as changed.",
    )
    noise_floor: float = Field(
        default=4.0, ge=0, le=255, description="Grey levels of tolerance every pixel gets."
    )
    learn_s: float = Field(
        default=2.0,
        gt=0,
        le=600,
        description="Seconds of frames a baseline learns the scene's normal variation from.",
    )
    tamper_s: float = Field(
        default=1.0, ge=0, le=600, description="Seconds of tamper before it is reported."
    )
    tamper_clear_s: float = Field(
        default=2.0, ge=0, le=600, description="Seconds without tamper before it ends."
    )
    min_area: float = Field(
        default=0.002, ge=0, le=1, description="Minimum changed fraction for a frame to differ."
    )
    lighting_guard: bool = True
    persistence: bool = Field(
        default=True,
        description="Count only what also differed in the previous frame (foliage flicker).",
    )
    auto_baseline: bool = Field(
        default=True, description="Take a baseline from the first frame when none is stored."
    )
    mask: Path | None = Field(
        default=None, description="Image: non-zero pixels are watched, black ones ignored."
    )

    @field_validator("blur")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd")
        return value

    @field_validator("threshold", "event_gap_s", "min_area", "noise_floor", "learn_s")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class StorageSettings(_Section):
    data_dir: Path = Path("./data")
    max_events: int = Field(default=1000, ge=1, le=10_000_000)
    max_age_days: float = Field(default=30, gt=0, le=36500)
    max_mb: float = Field(default=500, gt=0, le=10_000_000)
    jpeg_quality: int = Field(default=85, ge=10, le=100)


class DiscoverySettings(_Section):
    enabled: bool = Field(default=True, description="Announce the camera to Home Assistant.")
    status_topic: str = Field(
        default="homeassistant/status",
        pattern=r"^[^#+\s]+$",
        description="Home Assistant's birth topic: 'online' there makes the agent re-announce.",
    )


class WebSettings(_Section):
    enabled: bool = False
    host: str = Field(default="127.0.0.1", min_length=1, description="Loopback unless changed.")
    port: int = Field(default=8080, ge=1, le=65535)
    token: SecretStr | None = Field(
        default=None, description="When set, required for everything but /healthz."
    )
    preview_fps: float = Field(default=5.0, gt=0, le=30, description="Live view frame rate.")
    max_streams: int = Field(default=5, ge=1, le=100, description="Concurrent live views.")


class Settings(BaseSettings):
    """The whole settings tree; each component is handed only its section."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        secrets_prefix="",
        secrets_nested_delimiter="__",
        secrets_dir_missing="ok",
    )

    camera: CameraSettings = CameraSettings()
    mqtt: MqttSettings = MqttSettings()
    detector: DetectorSettings = DetectorSettings()
    storage: StorageSettings = StorageSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    web: WebSettings = WebSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file and secrets folder are chosen per load (see load_settings), through
        # the model_config of a subclass made for that load.
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("yaml_file") is not None:
            sources.append(YamlConfigSettingsSource(settings_cls))
        sources.append(NestedSecretsSettingsSource(file_secret_settings))
        return tuple(sources)


def _check_yaml(path: Path) -> None:
    """Read the YAML file once up front so that a bad file gets a clear message."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: invalid YAML ({exc})") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping of sections")


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(part) for part in err["loc"]) or "(settings)"
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown setting"
        value = err.get("input")
        shown = ""
        if err["type"] != "extra_forbidden" and not isinstance(value, dict):
            shown = " (got <hidden>)" if "password" in field else f" (got {value!r})"
        lines.append(f"  {field}: {reason}{shown}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    secrets_dir: Path | None = None,
) -> Settings:
    """Load and validate settings; raise ConfigError with a readable message on any fault."""
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = Path(os.environ[CONFIG_ENV])
    if config_file is not None:
        _check_yaml(config_file)
    secrets = secrets_dir if secrets_dir is not None else DEFAULT_SECRETS_DIR

    class _LoadedSettings(Settings):
        model_config = SettingsConfigDict(
            yaml_file=config_file,
            secrets_dir=secrets if secrets.is_dir() else None,
        )

    try:
        return _LoadedSettings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def masked_dump(settings: Settings) -> dict[str, Any]:
    """Effective settings as plain data, with every secret replaced by '***'."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    if settings.mqtt.password is not None:
        data["mqtt"]["password"] = "***"  # noqa: S105 - the mask itself, not a secret
    if settings.web.token is not None:
        data["web"]["token"] = "***"  # noqa: S105
    return data


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
