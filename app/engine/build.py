"""The composition root: a ready engine from settings (its pack's models and their calibration)."""

from __future__ import annotations

from app.engine.calibration import Calibration
from app.engine.engine import FaceEngine
from app.engine.packs import BUNDLED_CALIBRATIONS, LoadedModels, ModelPackError, load_models
from app.engine.traits import TraitEstimator
from app.settings import Settings


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
    measured_side = calibration.raw.get("model", {}).get("detection_max_side")
    if measured_side is not None and measured_side != settings.detection_max_side:
        raise ModelPackError(
            f"{models.calibration_path} was measured with COMPAREFACES_DETECTION_MAX_SIDE={measured_side}, "
            f"not {settings.detection_max_side}: landmarks, and so scores, depend on it. Set it back, or run: {command}"
        )
    ages = calibration.raw.get("model", {}).get("ages")
    if ages is not None and ages != TraitEstimator.model_id:
        raise ModelPackError(f"{models.calibration_path} was measured with age estimates of {ages!r}. Run: {command}")
    return FaceEngine(
        models.detector,
        models.recognizer,
        calibration,
        model_id=models.model_id,
        max_image_pixels=settings.max_image_pixels,
        jpeg_decode_min_side=settings.jpeg_decode_min_side,
        ages=age_estimator(settings) if calibration.strata else None,
        max_decode_bytes=settings.max_decode_bytes,
        flip_portraits=models.flip_portraits,
    )


def age_estimator(settings: Settings) -> TraitEstimator:
    """The apparent-age estimate that chooses a pair's stratum (its thresholds)."""
    return TraitEstimator.load(settings.execution_provider, intra_op_threads=settings.detector_threads)
