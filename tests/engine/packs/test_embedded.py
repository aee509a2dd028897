"""The sface-reid pack: SFace fused with Intel's face-reidentification-retail-0095 (vendored, pinned)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from app.engine.build import load_engine
from app.engine.engine import FaceEngine, largest_face
from app.engine.geometry import align_face
from app.engine.packs import FUSED_PACK, load_models
from app.engine.packs.common import file_sha256
from app.engine.packs.embedded import REID_DIR, REID_SHA256
from app.engine.recognizer import CropRegion, FusedRecognizer, region_crops
from app.engine.types import ImageType
from app.settings import Settings
from tests.helpers.images import astronaut_bgr, astronaut_face_crop


def test_region_crops_cut_the_template_frame_at_any_scale() -> None:
    columns = np.tile(np.arange(224, dtype=np.uint8)[None, :, None], (224, 1, 3))
    crops = region_crops(np.stack([columns, columns]), CropRegion(left=8, right=104), 128)
    assert crops.shape == (2, 128, 128, 3)
    assert abs(int(crops[0, 64, 0, 0]) - 16) <= 1 and abs(int(crops[0, 64, -1, 0]) - 207) <= 1
    whole = region_crops(columns[None], CropRegion(), 112)
    assert whole.shape == (1, 112, 112, 3)


def test_vendored_model_matches_its_pinned_sha256() -> None:
    for name, digest in REID_SHA256.items():
        assert file_sha256(REID_DIR / name) == digest
    assert (REID_DIR / "LICENSE").read_text().lstrip().startswith("Apache License")


@pytest.fixture(scope="module")
def engine() -> Iterator[FaceEngine]:
    engine = load_engine(Settings(model=FUSED_PACK, intra_op_threads=1))
    yield engine
    engine.close()


def test_fused_cosine_is_the_weighted_mean_of_the_members() -> None:
    models = load_models(Settings(model=FUSED_PACK, intra_op_threads=1))
    recognizer = models.recognizer
    assert isinstance(recognizer, FusedRecognizer)
    assert sum(member.weight for member in recognizer.members) == pytest.approx(1)
    images = [astronaut_bgr(), astronaut_face_crop()]
    crops = np.stack(
        [align_face(image, largest_face(models.detector.detect(image)).landmarks, 224) for image in images]
    )
    fused = recognizer.embed(crops)
    assert fused.shape == (2, 384) and np.allclose(np.linalg.norm(fused, axis=1), 1, atol=1e-5)
    expected = 0.0
    for member in recognizer.members:
        own = member.recognizer.embed(region_crops(crops, member.region, member.recognizer.input_size))
        expected += member.weight * float(own[0] @ own[1])
    assert float(fused[0] @ fused[1]) == pytest.approx(expected, abs=1e-5)


def test_fused_pack_serves_calibrated_scores(engine: FaceEngine) -> None:
    assert engine.model_id == load_models(Settings(model=FUSED_PACK, intra_op_threads=1)).model_id
    first, second = engine.embed_pixels(
        [(astronaut_bgr(), ImageType.FACE_PIC), (astronaut_face_crop(), ImageType.FACE_PIC)]
    )
    comparison = engine.compare(first, second)
    assert comparison.score > comparison.thresholds["0.0001"]  # the same face, cropped
