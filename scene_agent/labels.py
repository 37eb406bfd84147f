"""Labelled frames and JPEG encoding: boxes, time and score drawn on a copy of the frame.

Pure core (OpenCV drawing only).
"""

from __future__ import annotations

from datetime import datetime

import cv2
import numpy as np

from scene_agent.detector import Detection, Image

_RED = (0, 0, 255)
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)


def label_frame(frame: Image, detection: Detection, when: datetime, threshold: float) -> Image:
    """A copy of ``frame`` with the changed regions boxed and time and score written on it."""
    out = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    height, width = out.shape[:2]
    thickness = max(2, round(width / 400))
    for x, y, w, h in detection.boxes:
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), _RED, thickness)
    scale = max(0.45, width / 1400)
    text = (
        f"{when.strftime('%Y-%m-%d %H:%M:%S %Z').strip()}  "
        f"score {detection.score:.1f} / {threshold:g}  "
        f"changed {detection.changed_fraction * 100:.1f}%"
    )
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    pad = max(4, th // 3)
    cv2.rectangle(out, (0, height - th - base - 2 * pad), (tw + 2 * pad, height), _BLACK, -1)
    cv2.putText(
        out,
        text,
        (pad, height - base - pad),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        _WHITE,
        1,
        cv2.LINE_AA,
    )
    return out


def encode_jpeg(image: Image, quality: int, max_width: int | None = None) -> bytes:
    """JPEG bytes, downscaled first when wider than ``max_width``."""
    if max_width is not None and image.shape[1] > max_width:
        height = max(1, round(image.shape[0] * max_width / image.shape[1]))
        image = cv2.resize(image, (max_width, height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf)


def decode_jpeg(data: bytes) -> Image:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a decodable image")
    return image
