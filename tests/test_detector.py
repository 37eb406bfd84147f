"""The detector on synthetic frames: what must differ, what must not."""

from __future__ import annotations

import numpy as np
import pytest

from scene_agent.config import DetectorSettings
from scene_agent.detector import Detector, median_frame, preprocess, working_size
from tests.conftest import add_noise, brighten, jpeg_roundtrip, textured_scene, twice, with_object


@pytest.fixture
def scene() -> np.ndarray:
    return textured_scene(1280, 720, seed=3)


@pytest.fixture
def detector(scene: np.ndarray, detector_settings: DetectorSettings) -> Detector:
    d = Detector(detector_settings)
    d.set_baseline(scene)
    return d


def test_identical_frame_scores_zero(detector: Detector, scene: np.ndarray) -> None:
    result = twice(detector, scene.copy())
    assert result.score == 0.0
    assert result.changed_fraction == 0.0
    assert result.boxes == ()
    assert not result.differs


@pytest.mark.parametrize("sigma", [3, 8, 15])
def test_sensor_noise_does_not_differ(detector: Detector, scene: np.ndarray, sigma: int) -> None:
    result = twice(detector, add_noise(scene, sigma, seed=sigma))
    assert not result.differs
    assert result.score < detector.threshold / 4
    assert result.boxes == ()


@pytest.mark.parametrize("quality", [30, 60, 90])
def test_jpeg_reencode_does_not_differ(detector: Detector, scene: np.ndarray, quality: int) -> None:
    result = twice(detector, jpeg_roundtrip(add_noise(scene, 4), quality))
    assert not result.differs
    assert result.score < detector.threshold / 4


@pytest.mark.parametrize("gain", [0.7, 0.85, 1.15, 1.3])
def test_global_brightness_shift_does_not_differ(
    detector: Detector, scene: np.ndarray, gain: float
) -> None:
    result = twice(detector, add_noise(brighten(scene, gain), 4))
    assert not result.differs, result
    assert result.changed_fraction < 0.001


def test_brightness_shift_differs_without_the_lighting_guard(scene: np.ndarray) -> None:
    # Shows the guard is what keeps the shift quiet (so the test above can fail).
    d = Detector(DetectorSettings(lighting_guard=False))
    d.set_baseline(scene)
    assert twice(d, brighten(scene, 1.15)).score > 5 * d.threshold
    # The whole picture differs: more than the view-changed share, so it reads as tamper.
    brighter = twice(d, brighten(scene, 1.3))
    assert brighter.differs or brighter.tamper == "moved"


def test_object_under_brightness_shift_is_still_found(
    detector: Detector, scene: np.ndarray
) -> None:
    frame = brighten(with_object(scene, 500, 300, 120, 160, colour=(230, 230, 40)), 1.15)
    result = twice(detector, add_noise(frame, 4))
    assert result.differs
    x, y, w, h = result.boxes[0]
    assert abs(x - 500) <= 24 and abs(y - 300) <= 24
    assert abs(w - 120) <= 48 and abs(h - 160) <= 48


def test_small_object_is_found_and_boxed_in_full_frame_pixels(
    detector: Detector, scene: np.ndarray
) -> None:
    # 64 x 48 px at 1280 x 720: a third of one percent of the frame.
    frame = add_noise(with_object(scene, 900, 100, 64, 48, colour=(10, 10, 10)), 4)
    result = twice(detector, frame)
    assert result.differs, result
    assert len(result.boxes) == 1
    x, y, w, h = result.boxes[0]
    assert 880 <= x <= 900 and 80 <= y <= 100
    assert 64 <= w <= 100 and 48 <= h <= 84
    assert 0.002 < result.changed_fraction < 0.01


def test_large_object_scores_higher_than_small(detector: Detector, scene: np.ndarray) -> None:
    small = twice(detector, with_object(scene, 900, 100, 64, 48, colour=(10, 10, 10)))
    large = twice(detector, with_object(scene, 200, 100, 600, 400, colour=(10, 10, 10)))
    assert large.differs
    assert large.score > 5 * small.score
    assert large.changed_fraction > 0.15
    x, y, w, h = large.boxes[0]
    assert x <= 200 and y <= 100 and x + w >= 800 and y + h >= 500


def test_lasting_change_keeps_differing(detector: Detector, scene: np.ndarray) -> None:
    moved = with_object(scene, 300, 200, 200, 150, colour=(250, 250, 250))
    scores = [twice(detector, add_noise(moved, 4, seed=i)).score for i in range(10)]
    assert all(s >= detector.threshold for s in scores)
    assert max(scores) - min(scores) < 0.1 * max(scores)


def test_threshold_is_live(detector: Detector, scene: np.ndarray) -> None:
    frame = with_object(scene, 900, 100, 64, 48, colour=(10, 10, 10))
    result = twice(detector, frame)
    detector.threshold = result.score + 1
    assert not twice(detector, frame).differs
    detector.threshold = result.score
    assert twice(detector, frame).differs


def test_min_area_guards_a_tiny_strong_change(scene: np.ndarray) -> None:
    d = Detector(DetectorSettings(threshold=0.1, min_area=0.01))
    d.set_baseline(scene)
    result = twice(d, with_object(scene, 900, 100, 40, 40, colour=(255, 0, 255)))
    assert result.score >= 0.1
    assert not result.differs


def test_mask_ignores_changes_in_black_areas(scene: np.ndarray) -> None:
    mask = np.full(scene.shape[:2], 255, np.uint8)
    mask[:, :640] = 0  # ignore the left half
    d = Detector(DetectorSettings(), mask)
    d.set_baseline(scene)
    left = twice(d, with_object(scene, 100, 100, 300, 300, colour=(0, 0, 0)))
    right = twice(d, with_object(scene, 800, 100, 300, 300, colour=(0, 0, 0)))
    assert not left.differs and left.boxes == ()
    assert right.differs


def test_all_black_mask_is_refused(scene: np.ndarray) -> None:
    d = Detector(DetectorSettings(), np.zeros(scene.shape[:2], np.uint8))
    with pytest.raises(ValueError, match="no pixel"):
        d.set_baseline(scene)


def test_median_baseline_leaves_out_passers_by(scene: np.ndarray) -> None:
    frames = [add_noise(scene, 5, seed=i) for i in range(5)]
    frames[1] = with_object(frames[1], 100, 100, 200, 200, colour=(0, 0, 0))
    frames[3] = with_object(frames[3], 700, 300, 200, 200, colour=(255, 255, 255))
    d = Detector(DetectorSettings())
    d.set_baseline(median_frame(frames))
    assert not twice(d, add_noise(scene, 5, seed=9)).differs
    d.set_baseline(frames[1])
    assert twice(d, add_noise(scene, 5, seed=9)).differs


def test_median_of_mixed_sizes_is_refused(scene: np.ndarray) -> None:
    with pytest.raises(ValueError, match="differ in size"):
        median_frame([scene, scene[:100]])
    with pytest.raises(ValueError, match="no frames"):
        median_frame([])


def test_frame_of_another_size_is_compared_at_the_baseline_working_size(
    detector: Detector, scene: np.ndarray
) -> None:
    import cv2

    smaller = cv2.resize(scene, (640, 360), interpolation=cv2.INTER_AREA)
    assert not twice(detector, smaller).differs
    changed = twice(detector, with_object(smaller, 450, 50, 32, 24, colour=(10, 10, 10)))
    assert changed.differs
    x, y, _, _ = changed.boxes[0]
    assert 430 <= x <= 450 and 30 <= y <= 50  # boxes in the frame's own pixels


def test_grey_frames_work(scene: np.ndarray) -> None:
    import cv2

    grey = cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY)
    d = Detector(DetectorSettings())
    d.set_baseline(grey)
    assert not twice(d, add_noise(grey, 4)).differs
    assert twice(d, with_object(grey, 100, 100, 200, 200, colour=(0, 0, 0))).differs


def test_working_size_never_upscales() -> None:
    assert working_size((1080, 1920, 3), 320) == (320, 180)
    assert working_size((240, 320, 3), 320) == (320, 240)
    assert working_size((120, 160), 320) == (160, 120)
    assert preprocess(np.zeros((1080, 1920, 3), np.uint8), (320, 180), 5).shape == (180, 320)


def test_detect_without_baseline_is_an_error(detector_settings: DetectorSettings) -> None:
    d = Detector(detector_settings)
    assert not d.has_baseline
    with pytest.raises(RuntimeError):
        twice(d, np.zeros((10, 10, 3), np.uint8))
