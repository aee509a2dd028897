"""The second detection pass for the compared face (app/engine/refine.py): pure geometry with a
scripted detector, and the real YuNet on a real photo."""

from __future__ import annotations

import numpy as np

from app.engine.refine import RefinedLandmarksDetector, square_around, square_crop
from app.engine.types import DetectedFace


def face(box: tuple[float, float, float, float], landmarks_at: float, score: float = 0.9) -> DetectedFace:
    return DetectedFace(box=np.array(box, np.float32), landmarks=np.full((5, 2), landmarks_at, np.float32), score=score)


class ScriptedDetector:
    """Answers the whole image with ``first``, any other (the square crop) with ``second``."""

    def __init__(self, image_shape: tuple[int, ...], first: list[DetectedFace], second: list[DetectedFace]) -> None:
        self.image_shape, self.first, self.second = image_shape, first, second
        self.seen: list[tuple[int, ...]] = []

    def detect(self, image_bgr: np.ndarray) -> list[DetectedFace]:
        self.seen.append(image_bgr.shape)
        return list(self.first if image_bgr.shape == self.image_shape else self.second)


IMAGE = np.zeros((300, 400, 3), np.uint8)


def test_square_is_centred_on_the_box_and_sized_by_its_longer_side() -> None:
    assert square_around(np.array([100, 50, 200, 250], np.float32), 1.2) == (30, 30, 240)


def test_square_crop_is_black_outside_the_image() -> None:
    image = np.full((10, 10, 3), 255, np.uint8)
    crop = square_crop(image, -5, -5, 10)
    assert crop.shape == (10, 10, 3)
    assert crop[0, 0].tolist() == [0, 0, 0] and crop[9, 9].tolist() == [255, 255, 255]


def test_the_largest_face_gets_the_second_passs_landmarks_in_image_coordinates() -> None:
    small, large = face((10, 10, 40, 40), 20.0), face((100, 50, 200, 250), 150.0, score=0.7)
    inner = ScriptedDetector(IMAGE.shape, [small, large], [face((20, 20, 220, 220), 100.0)])
    faces = RefinedLandmarksDetector(inner).detect(IMAGE)
    assert inner.seen == [IMAGE.shape, (240, 240, 3)]  # one more detection, on the 1.2x square
    np.testing.assert_allclose(faces[1].landmarks, np.full((5, 2), [130.0, 130.0]))  # 100 + (30, 30)
    np.testing.assert_array_equal(faces[1].box, large.box)
    assert faces[1].score == 0.7
    assert faces[0] is small


def test_nothing_found_closer_keeps_the_first_pass() -> None:
    only = face((100, 50, 200, 250), 150.0)
    faces = RefinedLandmarksDetector(ScriptedDetector(IMAGE.shape, [only], [])).detect(IMAGE)
    assert faces == [only]


def test_no_face_costs_one_detection() -> None:
    inner = ScriptedDetector(IMAGE.shape, [], [])
    assert RefinedLandmarksDetector(inner).detect(IMAGE) == []
    assert len(inner.seen) == 1


def test_a_smaller_first_pass_finds_the_face_and_the_full_canvas_refines_it() -> None:
    found = face((100, 50, 200, 250), 150.0)
    first = ScriptedDetector(IMAGE.shape, [found], [])
    inner = ScriptedDetector(IMAGE.shape, [face((0, 0, 1, 1), 0.0)], [face((20, 20, 220, 220), 100.0)])
    faces = RefinedLandmarksDetector(inner, first=first).detect(IMAGE)
    assert first.seen == [IMAGE.shape] and inner.seen == [(240, 240, 3)]  # the full canvas sees only the square
    np.testing.assert_array_equal(faces[0].box, found.box)
    np.testing.assert_allclose(faces[0].landmarks, np.full((5, 2), [130.0, 130.0]))


def test_where_the_smaller_first_pass_finds_nothing_the_full_canvas_searches_the_whole_image() -> None:
    found = face((100, 50, 200, 250), 150.0)
    first = ScriptedDetector(IMAGE.shape, [], [])
    inner = ScriptedDetector(IMAGE.shape, [found], [face((20, 20, 220, 220), 100.0)])
    faces = RefinedLandmarksDetector(inner, first=first).detect(IMAGE)
    assert inner.seen == [IMAGE.shape, (240, 240, 3)]
    np.testing.assert_array_equal(faces[0].box, found.box)


def test_the_default_pack_runs_its_first_pass_on_three_quarters_of_the_canvas() -> None:
    from app.engine.packs import load_models
    from app.engine.yunet import YuNetDetector
    from app.settings import Settings

    detector = load_models(Settings(detection_max_side=320)).detector
    assert isinstance(detector, RefinedLandmarksDetector)
    assert isinstance(detector.first, YuNetDetector) and isinstance(detector.inner, YuNetDetector)
    assert (detector.first.target_side, detector.inner.target_side) == (240, 320)


def test_real_yunet_refinement_moves_landmarks_a_little_not_to_another_face() -> None:
    from app.engine.packs import load_models
    from app.settings import Settings
    from tests.helpers.images import astronaut_bgr

    detector = load_models(Settings(model="sface-refined")).detector
    assert isinstance(detector, RefinedLandmarksDetector)
    image = astronaut_bgr()
    first = max(detector.inner.detect(image), key=lambda found: found.area)
    refined = max(detector.detect(image), key=lambda found: found.area)
    eye_distance = float(np.linalg.norm(first.landmarks[1] - first.landmarks[0]))
    moved = np.linalg.norm(refined.landmarks - first.landmarks, axis=1)
    assert 0 < moved.max() < 0.25 * eye_distance
