"""The composition root refuses a calibration it cannot stand behind (no model files needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from app.engine.build import engine_for
from app.engine.packs import BUNDLED_CALIBRATIONS, LoadedModels, ModelPackError
from app.settings import Settings


def models_with(tmp_path: Path, **model_entry: object) -> LoadedModels:
    data = json.loads((BUNDLED_CALIBRATIONS / "default.json").read_text())
    data["model"] = {"id": "stand-in", **model_entry}
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(data))
    stand_in = cast(Any, object())
    return LoadedModels(model_id="stand-in", detector=stand_in, recognizer=stand_in, calibration_path=path)


def test_a_calibration_measured_with_another_detection_canvas_is_refused(tmp_path: Path) -> None:
    models = models_with(tmp_path, detection_max_side=320)
    with pytest.raises(ModelPackError, match="COMPAREFACES_DETECTION_MAX_SIDE=320, not 640"):
        engine_for(models, Settings(detection_max_side=640))
    assert engine_for(models, Settings(detection_max_side=320)).model_id == "stand-in"


def test_a_calibration_that_does_not_say_serves_any_canvas(tmp_path: Path) -> None:
    assert engine_for(models_with(tmp_path), Settings(detection_max_side=640)).model_id == "stand-in"


def test_a_calibration_of_other_models_is_refused(tmp_path: Path) -> None:
    models = models_with(tmp_path)
    models.model_id = "another"
    with pytest.raises(ModelPackError, match="calibrates 'stand-in', not 'another'"):
        engine_for(models, Settings())
