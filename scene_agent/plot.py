"""``replay --plot``: the score over time as a PNG, drawn with OpenCV.

The score is drawn on a square-root scale (it is a squared measure: the root keeps
both a quiet scene's near-zero scores and a big change's hundreds readable), with the
threshold as a red line, change episodes shaded orange and tamper spans shaded grey.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from scene_agent.imaging import Image

_WIDTH, _HEIGHT = 1200, 360
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 30, 40
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def plot_scores(
    scores: Sequence[float],
    threshold: float,
    events: Sequence[dict[str, Any]],
    tamper: Sequence[dict[str, Any]],
    fps: float,
) -> Image:
    """The plot as a BGR image."""
    image = np.full((_HEIGHT, _WIDTH, 3), 255, np.uint8)
    frames = max(1, len(scores))
    top = max([threshold * 1.5, *scores]) if scores else threshold * 1.5
    root_top = math.sqrt(max(top, 1e-6))
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM

    def x_of(frame: float) -> int:
        return _LEFT + round(plot_w * frame / max(1, frames - 1))

    def y_of(score: float) -> int:
        return _TOP + plot_h - round(plot_h * math.sqrt(max(score, 0.0)) / root_top)

    def shade(spans: Sequence[dict[str, Any]], colour: tuple[int, int, int]) -> None:
        for span in spans:
            end = span["end_frame"] if span["end_frame"] is not None else frames - 1
            cv2.rectangle(
                image, (x_of(span["start_frame"]), _TOP), (x_of(end), _TOP + plot_h), colour, -1
            )

    shade(events, (170, 215, 255))
    shade(tamper, (200, 200, 200))
    cv2.rectangle(image, (_LEFT, _TOP), (_LEFT + plot_w, _TOP + plot_h), (0, 0, 0), 1)
    for fraction in (0.25, 0.5, 0.75, 1.0):
        value = (root_top * fraction) ** 2
        y = y_of(value)
        cv2.line(image, (_LEFT - 4, y), (_LEFT, y), (0, 0, 0), 1)
        cv2.putText(image, f"{value:.3g}", (4, y + 4), _FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    seconds = frames / fps if fps > 0 else float(frames)
    for tick in range(6):
        x = _LEFT + round(plot_w * tick / 5)
        label = f"{seconds * tick / 5:.1f} s"
        cv2.putText(image, label, (x - 15, _HEIGHT - 15), _FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    if scores:
        points = np.array([[x_of(i), y_of(s)] for i, s in enumerate(scores)], np.int32)
        cv2.polylines(image, [points], isClosed=False, color=(120, 60, 0), thickness=1)
    y = y_of(threshold)
    cv2.line(image, (_LEFT, y), (_LEFT + plot_w, y), (0, 0, 220), 1, cv2.LINE_AA)
    caption = f"score (sqrt scale), threshold {threshold:g} (red); episodes orange, tamper grey"
    cv2.putText(image, caption, (_LEFT, 20), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return image
