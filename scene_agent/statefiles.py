"""The small state files beside the events (DESIGN section 5): the baseline picture and
its metadata, the learned reference model of each camera mode, and the runtime state
commands change (``runtime.json``).

Stored JSON is read back through pydantic: a missing key, a wrong type or a value out of
range makes the whole file unusable (logged), never half-read. Writes are atomic.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, TypeAdapter, ValidationError

from scene_agent.store import atomic_write

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BaselineInfo:
    id: str
    taken_at: str
    frames: int
    width: int
    height: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_BASELINE_INFO = TypeAdapter(BaselineInfo)

MODEL_MODES = ("colour", "grey")


class BaselineStore:
    """``baseline.jpg`` and ``baseline.json`` in the data directory, and the reference
    model of each camera mode (``baseline-model-colour.npz``, ``baseline-model-grey.npz``:
    the learned median and normal variation, see ``reference.SceneModel``)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.image_path = data_dir / "baseline.jpg"
        self.info_path = data_dir / "baseline.json"

    def model_path(self, mode: str) -> Path:
        if mode not in MODEL_MODES:
            raise ValueError(f"no such camera mode: {mode!r}")
        return self.data_dir / f"baseline-model-{mode}.npz"

    def save_model(self, mode: str, data: bytes) -> None:
        atomic_write(self.model_path(mode), data)

    def load_models(self) -> dict[str, bytes]:
        """The stored models by mode; unreadable ones are logged and left out."""
        models: dict[str, bytes] = {}
        for mode in MODEL_MODES:
            try:
                models[mode] = self.model_path(mode).read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("stored %s reference model is unreadable: %s", mode, exc)
        return models

    def clear_models(self) -> None:
        """A new baseline replaces every mode's reference."""
        for mode in MODEL_MODES:
            self.model_path(mode).unlink(missing_ok=True)

    def save(self, jpeg: bytes, info: BaselineInfo) -> None:
        # The image first: a crash in between leaves the old info next to a new image,
        # which load() still accepts, rather than info pointing at a missing image.
        atomic_write(self.image_path, jpeg)
        atomic_write(self.info_path, json.dumps(info.as_dict(), indent=2).encode())

    def load(self) -> tuple[bytes, BaselineInfo] | None:
        """The stored baseline, or None if there is none or it is unreadable (logged)."""
        try:
            jpeg = self.image_path.read_bytes()
            info = _BASELINE_INFO.validate_json(self.info_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as exc:
            log.warning("stored baseline is unreadable, ignoring it: %s", exc)
            return None
        return jpeg, info


def _iso_time(value: str) -> str:
    # Only a time goes back out (it feeds Home Assistant's timestamp sensor).
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


@dataclass(frozen=True, slots=True)
class RuntimeState:
    """Values commands change, kept across restarts (``runtime.json``)."""

    monitoring: StrictBool
    threshold: Annotated[float, Field(gt=0, le=65025, allow_inf_nan=False)]
    last_change: Annotated[str, AfterValidator(_iso_time)] | None = None  # latest change start


# Stored JSON is read back through pydantic: a missing key, a wrong type or a value out of
# range makes the whole file unusable (logged), never half-read.
_RUNTIME_STATE = TypeAdapter(RuntimeState)


class RuntimeStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "runtime.json"

    def load(self) -> RuntimeState | None:
        """The stored state, or None if there is none or any of it is invalid (logged)."""
        try:
            return _RUNTIME_STATE.validate_json(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as exc:
            log.warning("stored runtime state is unreadable, using the settings: %s", exc)
            return None

    def save(self, state: RuntimeState) -> None:
        data = {
            "monitoring": state.monitoring,
            "threshold": state.threshold,
            "last_change": state.last_change,
        }
        atomic_write(self.path, json.dumps(data).encode())
