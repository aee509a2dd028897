"""``embed_directory`` (app/tools/dataset.py): calibration embeds each photo exactly as the server does."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from app.engine.build import engine_for
from app.engine.packs import load_models
from app.engine.types import ImageType
from app.settings import Settings
from app.tools.dataset import embed_directory, id_style_version
from tests.helpers.images import astronaut_bgr, astronaut_face_crop, encode


def test_photos_and_their_id_portraits_are_embedded_by_the_engines_own_path(tmp_path: Path) -> None:
    settings = Settings(intra_op_threads=1)  # the default pack: its portraits are embedded with their mirror image
    photos = {"astronaut/whole.jpg": astronaut_bgr(), "astronaut/crop.jpg": astronaut_face_crop()}
    for name, image in photos.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(encode(image))
    (tmp_path / "nobody").mkdir()
    (tmp_path / "nobody" / "grey.png").write_bytes(encode(np.full((200, 200, 3), 128, np.uint8), ".png"))

    models = load_models(settings)
    assert models.flip_portraits
    data = embed_directory(models, tmp_path, settings=settings)
    assert [f"{p.parent.name}/{p.name}" for p in data.photos] == ["astronaut/crop.jpg", "astronaut/whole.jpg"]
    assert data.missed == 1

    engine = engine_for(models, settings)
    for index, path in enumerate(data.photos):
        pixels = engine.decode(path.read_bytes())
        (served,) = engine.embed_pixels([(pixels, ImageType.FACE_PIC)])
        np.testing.assert_allclose(data.face[index], served.embedding, atol=1e-5)
        portrait = id_style_version(pixels, served.box)
        assert portrait.shape[:2] == (126, 102)
        (served_portrait,) = engine.embed_pixels([(portrait, ImageType.ID_PIC)])
        np.testing.assert_allclose(data.id_style[index], served_portrait.embedding, atol=1e-5)
        (as_photo,) = engine.embed_pixels([(portrait, ImageType.FACE_PIC)])
        assert float(as_photo.embedding @ served_portrait.embedding) < 0.9999  # the mirror image counted
    assert cv2.imread(str(data.photos[0])) is not None
