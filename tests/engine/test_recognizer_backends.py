"""The embedded SFace gives the same embeddings on OpenVINO (float32 and bf16) as on onnxruntime."""

import cv2
import numpy as np
import pytest

from app.engine.onnx_convert import converted_copy
from app.engine.packs.embedded import DEFAULT_RECOGNIZER, SFACE_PREPROCESSING, embedded_model_dir
from app.engine.recognizer import OnnxRecognizer
from app.engine.runtime import OpenVinoNetwork, onnxruntime_network
from app.settings import Settings
from tests.helpers.images import astronaut_face_crop


@pytest.mark.parametrize(("precision", "min_cosine"), [("f32", 0.99999), ("bf16", 0.999)])
def test_openvino_and_onnxruntime_agree_on_sface(precision: str, min_cosine: float) -> None:
    model = converted_copy(embedded_model_dir() / DEFAULT_RECOGNIZER, Settings().cache_dir)
    noise = np.random.default_rng(0).integers(0, 256, size=(2, 112, 112, 3), dtype=np.uint8)
    face = cv2.resize(astronaut_face_crop(), (112, 112))
    crops = np.concatenate([noise, face[None]])
    reference = OnnxRecognizer(onnxruntime_network(model, "cpu", 1), SFACE_PREPROCESSING).embed(crops)
    openvino = OnnxRecognizer(OpenVinoNetwork(model, 1, precision), SFACE_PREPROCESSING)  # type: ignore[arg-type]
    for batch in (crops, crops[:1]):
        embeddings = openvino.embed(batch)
        assert embeddings.shape == (len(batch), reference.shape[1])
        assert np.min(np.sum(embeddings * reference[: len(batch)], axis=1)) > min_cosine
