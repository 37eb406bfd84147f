"""The reference model on synthetic frames: shake, sway, exposure, tamper, camera modes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from scene_agent.config import DetectorSettings
from scene_agent.detector import Detector
from scene_agent.imaging import COLOUR, GREY, ModeTracker, chroma
from scene_agent.reference import SceneModel
from scene_agent.tamper import TamperEnded, TamperStarted, TamperTracker
from tests.conftest import add_noise, textured_scene, twice, with_object


def warped(frame: np.ndarray, dx: float, dy: float, angle: float = 0.0) -> np.ndarray:
    h, w = frame.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    matrix[:, 2] += np.array([dx, dy])
    return cv2.warpAffine(frame, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def swaying(scene: np.ndarray, i: int) -> np.ndarray:
    """A 'tree' region whose texture moves every frame, over a still scene."""
    frame = scene.copy()
    rng = np.random.default_rng(i)
    coarse = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
    leaves = cv2.resize(coarse, (160, 120), interpolation=cv2.INTER_NEAREST)
    frame[40:160, 400:560] = cv2.GaussianBlur(leaves, (7, 7), 0)
    return add_noise(frame, 3, seed=i)


@pytest.fixture
def scene() -> np.ndarray:
    return textured_scene(640, 360, seed=5)


def test_shaken_frames_are_aligned_and_stay_quiet(scene: np.ndarray) -> None:
    detector = Detector(DetectorSettings())
    detector.set_baseline(scene)
    for dx, dy, angle in [(6.3, -4.1, 0.0), (-12.5, 7.2, 1.5), (18.0, 3.0, -2.0)]:
        shaken = twice(detector, warped(scene, dx, dy, angle))
        assert shaken.tamper is None
        assert not shaken.differs, (dx, dy, angle, shaken.score)
    # Without alignment the same shift is a flood of changes: the raw MSE shows it.
    assert twice(detector, warped(scene, 12.5, 7.2, 1.5)).mse > 100


def test_a_change_in_a_shaken_frame_is_still_found(scene: np.ndarray) -> None:
    detector = Detector(DetectorSettings())
    detector.set_baseline(scene)
    changed = warped(with_object(scene, 200, 150, 60, 60, colour=(0, 0, 0)), 9.0, -5.0, 1.0)
    result = twice(detector, changed)
    assert result.differs
    x, y, w, h = result.boxes[0]
    assert abs(x + w / 2 - 230) < 30 and abs(y + h / 2 - 180) < 30


def test_learned_variation_keeps_swaying_foliage_quiet_but_not_an_object(
    scene: np.ndarray,
) -> None:
    settings = DetectorSettings()
    learned = Detector(settings)
    learned.set_model(learned.model_of(swaying(scene, i) for i in range(20)))
    single = Detector(settings)
    single.set_baseline(swaying(scene, 0))
    later = [swaying(scene, i) for i in range(100, 110)]
    assert not any(twice(learned, f).differs for f in later)
    assert all(twice(single, f).differs for f in later)  # what the model is for
    intruder = with_object(swaying(scene, 200), 100, 200, 80, 80, colour=(250, 250, 250))
    assert twice(learned, intruder).differs


def test_a_passer_by_during_learning_is_not_learned(scene: np.ndarray) -> None:
    frames = [add_noise(scene, 3, seed=i) for i in range(20)]
    for i in range(6):  # present in 6 of 20 frames
        frames[i] = with_object(frames[i], 300, 100, 60, 120, colour=(20, 20, 20))
    detector = Detector(DetectorSettings())
    detector.set_model(detector.model_of(frames))
    assert not twice(detector, add_noise(scene, 3, seed=99)).differs
    back = with_object(add_noise(scene, 3, seed=98), 300, 100, 60, 120, colour=(20, 20, 20))
    assert twice(detector, back).differs


@pytest.mark.parametrize("gain", [0.25, 0.5, 2.0, 3.0])
def test_exposure_changes_are_absorbed_and_changes_score_alike(
    scene: np.ndarray, gain: float
) -> None:
    dim = cv2.convertScaleAbs(scene, alpha=0.5)
    detector = Detector(DetectorSettings())
    detector.set_baseline(dim)
    relit = cv2.convertScaleAbs(dim, alpha=gain)
    assert not twice(detector, relit).differs
    with_thing = with_object(dim, 200, 150, 60, 60, colour=(0, 0, 0))
    assert twice(detector, cv2.convertScaleAbs(with_thing, alpha=gain)).differs


def test_single_image_learns_its_tolerance_from_the_next_frames(scene: np.ndarray) -> None:
    detector = Detector(DetectorSettings(), learn_frames=10)
    detector.set_baseline(swaying(scene, 0))
    results = [detector.detect(swaying(scene, i)) for i in range(1, 11)]
    assert all(r.learning and not r.differs for r in results)
    assert [m.learned for m in detector.learned] == [True]
    assert not any(detector.detect(swaying(scene, i)).differs for i in range(50, 60))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s: np.full_like(s, 12), "covered"),
        (lambda s: np.full_like(s, 255), "blinded"),
        (lambda s: cv2.GaussianBlur(s, (0, 0), 20), "defocused"),
        (lambda s: np.ascontiguousarray(s[:, ::-1]), "moved"),
    ],
)
def test_tamper_reasons(scene: np.ndarray, make: object, reason: str) -> None:
    detector = Detector(DetectorSettings())
    detector.set_baseline(scene)
    result = twice(detector, make(scene))  # type: ignore[operator]
    assert result.tamper == reason
    assert not result.differs


def test_tamper_tracker_debounces_in_video_time() -> None:
    tracker = TamperTracker(start_s=1.0, end_s=2.0)
    events = [tracker.update(t / 10, "covered" if 10 <= t < 40 else None) for t in range(80)]
    changes = [(i, e) for i, e in enumerate(events) if e is not None]
    assert [type(e) for _, e in changes] == [TamperStarted, TamperEnded]
    assert changes[0][0] == 20  # one second after it began
    assert changes[1][0] == 60  # two seconds after it cleared
    assert isinstance(changes[1][1], TamperEnded) and changes[1][1].reason == "covered"


def test_mode_switch_to_grey_learns_a_night_reference_then_uses_both(scene: np.ndarray) -> None:
    detector = Detector(DetectorSettings(), learn_frames=5)
    detector.set_model(detector.model_of(add_noise(scene, 2, seed=i) for i in range(8)))
    grey = cv2.cvtColor(cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)

    def infrared(seed: int) -> np.ndarray:  # an infrared picture: the same in every channel
        one = add_noise(grey, 2, seed=seed)[:, :, :1]
        return np.ascontiguousarray(np.repeat(one, 3, axis=2))

    night = [detector.detect(infrared(i)) for i in range(12)]
    assert not any(r.differs for r in night)
    assert {m.mode for m in detector.learned} == {GREY}
    assert set(detector.models) == {COLOUR, GREY}
    person = with_object(grey, 300, 100, 60, 120, colour=(250, 250, 250))
    assert twice(detector, person).differs
    day = [detector.detect(add_noise(scene, 2, seed=50 + i)) for i in range(6)]
    assert not any(r.differs for r in day)
    assert day[-1].mode == COLOUR


def test_mode_tracker_needs_several_frames() -> None:
    tracker = ModeTracker(frames=3)
    assert tracker.update(20.0) == COLOUR
    assert [tracker.update(0.5) for _ in range(3)] == [COLOUR, COLOUR, GREY]
    assert chroma(np.zeros((10, 10), np.uint8)) == 0.0


def test_model_round_trips_through_bytes(scene: np.ndarray) -> None:
    detector = Detector(DetectorSettings())
    model = detector.model_of(swaying(scene, i) for i in range(8))
    again = SceneModel.from_bytes(model.to_bytes())
    assert again.mode == model.mode and again.frames == 8
    assert np.array_equal(again.median, model.median)
    assert again.tolerance is not None and model.tolerance is not None
    assert np.allclose(again.tolerance, model.tolerance, atol=0.1)
    with pytest.raises(ValueError, match="not a scene model"):
        SceneModel.from_bytes(b"not an npz")
