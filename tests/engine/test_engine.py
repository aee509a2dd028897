"""The engine's two-image path with the comparison service's detection helper: the helper thread
detects one image while the caller detects the other; the per-image pipeline's rules by image type."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.comparison import DetectionHelper
from app.engine.build import load_engine
from app.engine.engine import FaceEngine, FacePipeline
from app.engine.types import DetectedFace, ImageType
from app.errors import NoFaceDetected
from app.settings import Settings
from tests.helpers.images import astronaut_bgr, astronaut_face_crop


@pytest.fixture(scope="module")
def engine() -> Iterator[FaceEngine]:
    engine = load_engine(Settings())
    yield engine
    engine.close()


@pytest.fixture
def helper() -> Iterator[DetectionHelper]:
    helper = DetectionHelper()
    yield helper
    helper.close()


def test_pair_detection_equals_one_by_one(engine: FaceEngine, helper: DetectionHelper) -> None:
    images = [astronaut_bgr(), astronaut_face_crop()]
    alone = [engine.detect_largest([image])[0] for image in images]
    together = engine.detect_largest(images, helper.map)
    for single, paired in zip(alone, together, strict=True):
        np.testing.assert_allclose(paired.box, single.box)
        np.testing.assert_allclose(paired.landmarks, single.landmarks)


@pytest.mark.parametrize("blank_index", [0, 1])
def test_no_face_in_either_image_raises_and_frees_the_helper(
    engine: FaceEngine, helper: DetectionHelper, blank_index: int
) -> None:
    images = [astronaut_bgr(), astronaut_bgr()]
    images[blank_index] = np.full((200, 200, 3), 128, np.uint8)
    with pytest.raises(NoFaceDetected):
        engine.detect_largest(images, helper.map)
    assert len(engine.detect_largest([astronaut_bgr(), astronaut_face_crop()], helper.map)) == 2


def test_concurrent_pairs_all_get_their_faces(engine: FaceEngine, helper: DetectionHelper) -> None:
    pair = [astronaut_bgr(), astronaut_face_crop()]
    expected = engine.detect_largest(pair)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: engine.detect_largest(pair, helper.map), range(16)))
    for found in results:
        for face, reference in zip(found, expected, strict=True):
            np.testing.assert_allclose(face.box, reference.box)


def test_a_pair_is_answered_with_its_stratums_thresholds(engine: FaceEngine) -> None:
    from app.engine.calibration import Calibration
    from app.engine.strata import ADULT
    from app.engine.traits import TraitEstimator

    pooled = engine.calibration.cosine_at_far["FacePic-FacePic"]
    strata = {
        "child": {"cosine_at_far": {far: min(0.99, value + 0.15) for far, value in pooled.items()}},
        "young": {"cosine_at_far": {far: min(0.99, value + 0.1) for far, value in pooled.items()}},
        "adult": {"cosine_at_far": {far: value - 0.02 for far, value in pooled.items()}},
    }
    raw = {**engine.calibration.raw, "pair_types": {"FacePic-FacePic": {"cosine_at_far": pooled, "strata": strata}}}
    calibration = Calibration.from_dict(raw)
    with_ages = FaceEngine(
        engine.detector, engine.recognizer, calibration, model_id=engine.model_id, ages=TraitEstimator.load()
    )
    without_ages = FaceEngine(engine.detector, engine.recognizer, calibration, model_id=engine.model_id)
    pair = [(astronaut_bgr(), ImageType.FACE_PIC), (astronaut_face_crop(), ImageType.FACE_PIC)]
    first, second = with_ages.embed_pixels(pair)
    assert first.apparent_age is not None and first.apparent_age[0] > 25  # an adult astronaut
    answer = with_ages.compare(first, second)
    assert answer.stratum == ADULT
    assert answer.thresholds == calibration.thresholds("FacePic-FacePic", ADULT)
    unknown = without_ages.compare(*without_ages.embed_pixels(pair))
    assert unknown.stratum is None and unknown.thresholds["0.001"] > answer.thresholds["0.001"]  # the strictest
    assert unknown.score == answer.score  # the score scale does not move with the stratum


class OneFace:
    def detect(self, image_bgr: np.ndarray) -> list[DetectedFace]:
        landmarks = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]], np.float32)
        return [DetectedFace(box=np.array([0, 0, 112, 112], np.float32), landmarks=landmarks, score=0.9)]


class LeftHalfBrightness:
    """A recognizer whose 2-d 'embedding' tells a crop from its mirror image; records its batches."""

    input_size = 112

    def __init__(self) -> None:
        self.batches: list[int] = []

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        self.batches.append(len(aligned_bgr))
        left = aligned_bgr[:, :, :56].mean(axis=(1, 2, 3))
        right = aligned_bgr[:, :, 56:].mean(axis=(1, 2, 3))
        vectors = np.stack([left, right], axis=1).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_id_portraits_are_embedded_with_their_mirror_image_face_photos_once() -> None:
    image = np.zeros((112, 112, 3), np.uint8)
    image[:, :56] = 200  # bright left half
    image[:, 56:] = 50
    recognizer = LeftHalfBrightness()
    pipeline = FacePipeline(OneFace(), recognizer, flip_portraits=True)
    photo, portrait = pipeline.embed_pixels([(image, ImageType.FACE_PIC), (image, ImageType.ID_PIC)])
    assert recognizer.batches == [3]  # both crops and the portrait's mirror image, in one call
    assert photo.embedding[0] > 3 * photo.embedding[1]  # as it is
    np.testing.assert_allclose(portrait.embedding, [2**-0.5, 2**-0.5], atol=1e-6)  # mean of both sides
    assert portrait.image_type == ImageType.ID_PIC

    plain = FacePipeline(OneFace(), LeftHalfBrightness())
    _, unflipped = plain.embed_pixels([(image, ImageType.FACE_PIC), (image, ImageType.ID_PIC)])
    np.testing.assert_allclose(unflipped.embedding, photo.embedding)


def test_inspection_embeds_as_the_comparison_does() -> None:
    image = np.zeros((112, 112, 3), np.uint8)
    image[:, :56] = 200
    pipeline = FacePipeline(OneFace(), LeftHalfBrightness(), flip_portraits=True)
    images = [(image, ImageType.FACE_PIC), (image, ImageType.ID_PIC)]
    compared = pipeline.embed_pixels(images)
    inspected = pipeline.inspect_pixels(images)
    for face, inspection in zip(compared, inspected, strict=True):
        assert inspection.face is not None
        np.testing.assert_allclose(inspection.face.embedding, face.embedding)
