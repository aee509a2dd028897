"""The embedded SFace gives the same embeddings on OpenCV's DNN module as on onnxruntime."""

import numpy as np

from app.engine.onnx_convert import converted_copy
from app.engine.packs import DEFAULT_RECOGNIZER, SFACE_PREPROCESSING, embedded_model_dir
from app.engine.recognizer import OnnxRecognizer, OpenCvRecognizer
from app.engine.runtime import create_session
from app.settings import Settings


def test_opencv_and_onnxruntime_agree_on_sface() -> None:
    model = converted_copy(embedded_model_dir() / DEFAULT_RECOGNIZER, Settings().cache_dir)
    crops = np.random.default_rng(0).integers(0, 256, size=(3, 112, 112, 3), dtype=np.uint8)
    reference = OnnxRecognizer(create_session(model, "cpu", 1), SFACE_PREPROCESSING).embed(crops)
    opencv = OpenCvRecognizer(model, SFACE_PREPROCESSING)
    for batch in (crops, crops[:1]):
        embeddings = opencv.embed(batch)
        assert embeddings.shape == (len(batch), reference.shape[1])
        assert np.min(np.sum(embeddings * reference[: len(batch)], axis=1)) > 0.9999
