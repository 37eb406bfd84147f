"""Reading user-supplied image files (baseline images, detector masks) with clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2

from scene_agent.detector import Image
from scene_agent.errors import ConfigError, SourceError


def read_image(path: Path, what: str = "image") -> Image:
    if not path.is_file():
        raise SourceError(f"{what} {path}: not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"{what} {path}: not a readable image")
    return image


def load_mask(path: Path | None) -> Image | None:
    """The detector mask: non-zero pixels are watched. None when no mask is set."""
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"detector.mask: file {path} not found")
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ConfigError(f"detector.mask: {path} is not a readable image")
    if not mask.any():
        raise ConfigError(f"detector.mask: {path} is all black, nothing would be watched")
    return mask
