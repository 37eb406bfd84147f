"""Frame preparation shared by the detector and the reference model.

Pure core: numpy and OpenCV image maths only.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from cv2.typing import MatLike

Image = MatLike  # numpy arrays as OpenCV takes and returns them (uint8 frames)

# Camera modes: a colour picture, or a grey one (an infrared night mode, or a grey camera).
COLOUR = "colour"
GREY = "grey"


def working_size(frame_shape: Sequence[int], width: int) -> tuple[int, int]:
    """(width, height) of the working image for a frame; never upscales."""
    height, frame_width = int(frame_shape[0]), int(frame_shape[1])
    if frame_width <= width:
        return frame_width, height
    return width, max(1, round(height * width / frame_width))


def to_grey(frame: Image) -> Image:
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def preprocess(frame: Image, size: tuple[int, int], blur: int) -> Image:
    """Grey, low-pass filtered down to ``size``, Gaussian-blurred.

    Every source pixel is averaged in (that is what keeps sensor noise and JPEG blocks
    out of the score), in the cheapest order measured at 1080p: an exact 2x area
    resize of the colour frame (OpenCV's fast path), grey conversion at a quarter of the
    pixels, ``pyrDown`` halvings while still at least twice the target, then a bilinear
    step of less than two (the image is low-passed already and the blur follows).
    """
    height, width = frame.shape[:2]
    if width >= 2 * size[0] and height >= 2 * size[1]:
        frame = cv2.resize(frame, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    grey = to_grey(frame)
    while grey.shape[1] // 2 >= size[0] and grey.shape[0] // 2 >= size[1]:
        grey = cv2.pyrDown(grey)
    if (grey.shape[1], grey.shape[0]) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_LINEAR)
    if blur > 1:
        grey = cv2.GaussianBlur(grey, (blur, blur), 0)
    return grey


def chroma(frame: Image) -> float:
    """Mean colourfulness (max minus min channel, 0..255) of a sparse sample of the frame.

    An infrared night picture (or a grey camera) scores under 2; a colour camera's
    picture of almost any real scene scores well over 5. A 64-pixel-wide sample is enough.
    """
    if frame.ndim == 2 or frame.shape[2] < 3:
        return 0.0
    # Nearest-neighbour down to 64 px wide: a sparse sample, contiguous, for a few us.
    width = min(64, int(frame.shape[1]))
    height = max(1, round(frame.shape[0] * width / frame.shape[1]))
    sample = cv2.resize(frame, (width, height), interpolation=cv2.INTER_NEAREST)
    b, g, r = cv2.split(sample[:, :, :3])
    spread = cv2.subtract(cv2.max(cv2.max(b, g), r), cv2.min(cv2.min(b, g), r))
    return float(cv2.mean(spread)[0])


class ModeTracker:
    """Which camera mode (colour or grey) the frames are in, with hysteresis.

    A frame counts as grey under ``GREY_BELOW`` and as colour over ``COLOUR_ABOVE``; the
    mode switches after ``frames`` frames in a row say so, so one odd frame does not.
    """

    GREY_BELOW = 2.5
    COLOUR_ABOVE = 4.0

    def __init__(self, frames: int = 3) -> None:
        self._frames = frames
        self.mode: str | None = None
        self._candidate: str | None = None
        self._run = 0

    @property
    def switching(self) -> bool:
        """Frames of the other mode have been seen, not yet enough to switch."""
        return self._candidate is not None

    def update(self, colourfulness: float) -> str:
        if colourfulness < self.GREY_BELOW:
            seen: str | None = GREY
        elif colourfulness > self.COLOUR_ABOVE:
            seen = COLOUR
        else:
            seen = None  # in between: keeps the current mode
        if self.mode is None:
            self.mode = seen or COLOUR
            return self.mode
        if seen is None or seen == self.mode:
            self._candidate, self._run = None, 0
            return self.mode
        if seen != self._candidate:
            self._candidate, self._run = seen, 0
        self._run += 1
        if self._run >= self._frames:
            self.mode, self._candidate, self._run = seen, None, 0
        return self.mode


def median_frame(frames: Sequence[Image]) -> Image:
    """Per-pixel median of frames of one size: passers-by don't end up in the reference."""
    if not frames:
        raise ValueError("no frames to take a baseline from")
    if len(frames) == 1:
        return frames[0].copy()
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"baseline frames differ in size: {sorted(shapes)}")
    median: Image = np.median(np.stack(frames), axis=0).astype(np.uint8)
    return median
