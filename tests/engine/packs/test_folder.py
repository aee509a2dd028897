"""Model packs from a models folder: file resolution, model ids, real loading, calibrate-then-serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.engine.build import load_engine
from app.engine.packs import ModelPackError
from app.engine.packs.folder import (
    bundled_calibration,
    calibration_for,
    load_pack_models,
    pack_model_id,
    pack_sha256,
    read_pack,
)
from app.settings import Settings

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
MODELS = SHARED / "models"
LFW = SHARED / "data" / "lfw-dev"
PACK_FILES = ("det_500m.onnx", "mobilefacenet_128d.onnx")
needs_shared = pytest.mark.skipif(
    not all((MODELS / name).is_file() for name in PACK_FILES) or not LFW.is_dir(),
    reason=f"shared test models and LFW photos not found at {SHARED}",
)


def make_pack(models_dir: Path, name: str = "testpack", manifest: dict[str, object] | None = None) -> Path:
    folder = models_dir / name
    folder.mkdir(parents=True)
    for file in PACK_FILES:
        (folder / file).symlink_to(MODELS / file)
    if manifest is not None:
        (folder / "pack.json").write_text(json.dumps(manifest))
    return folder


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(name.encode())


def settings_for(models_dir: Path, name: str = "testpack", **extra: object) -> Settings:
    settings = Settings(model=name, models_dir=models_dir, intra_op_threads=1, access_keys_file=None, redis_url="")
    return settings.model_copy(update=extra)


# --- resolving files (no model is loaded) ---------------------------------------------------


def test_detector_is_the_det_file_and_recognizer_the_other(tmp_path: Path) -> None:
    touch(tmp_path / "p", "det_10g.onnx", "w600k_r50.onnx", "notes.txt")
    pack = read_pack(tmp_path, "p")
    assert (pack.detector.name, pack.recognizer.name) == ("det_10g.onnx", "w600k_r50.onnx")
    assert pack.calibration_path == tmp_path / "p" / "calibration.json"


def test_ambiguous_folder_asks_for_a_manifest_and_the_manifest_decides(tmp_path: Path) -> None:
    touch(tmp_path / "p", "det_10g.onnx", "w600k_r50.onnx", "genderage.onnx")
    with pytest.raises(ModelPackError, match="pack.json"):
        read_pack(tmp_path, "p")
    (tmp_path / "p" / "pack.json").write_text(json.dumps({"recognizer": "w600k_r50.onnx", "licence": "research"}))
    pack = read_pack(tmp_path, "p")
    assert pack.recognizer.name == "w600k_r50.onnx" and pack.licence == "research"


def test_manifest_errors_are_reported(tmp_path: Path) -> None:
    touch(tmp_path / "p", "det_10g.onnx", "w600k_r50.onnx")
    manifest = tmp_path / "p" / "pack.json"
    manifest.write_text(json.dumps({"recognizer": "missing.onnx"}))
    with pytest.raises(ModelPackError, match="missing.onnx"):
        read_pack(tmp_path, "p")
    manifest.write_text(json.dumps({"recognizer_preprocessing": {"bgr": True}}))
    with pytest.raises(ModelPackError, match="preprocessing"):
        read_pack(tmp_path, "p")
    manifest.write_text("{not json")
    with pytest.raises(ModelPackError, match="JSON"):
        read_pack(tmp_path, "p")


@pytest.mark.parametrize("name", ["..", "a/b", "", "missing"])
def test_bad_or_missing_pack_names_are_refused(tmp_path: Path, name: str) -> None:
    touch(tmp_path / "real", "det_500m.onnx", "r.onnx")
    with pytest.raises(ModelPackError, match="invalid|not found"):
        read_pack(tmp_path, name)
    if name == "missing":
        with pytest.raises(ModelPackError, match="available: default, real"):
            read_pack(tmp_path, name)


def model_id_of(models_dir: Path, name: str) -> str:
    pack = read_pack(models_dir, name)
    return pack_model_id(pack, pack_sha256(pack))


def test_model_id_follows_file_hashes_and_preprocessing_not_the_folder_name(tmp_path: Path) -> None:
    touch(tmp_path / "p", "det_500m.onnx", "r.onnx")
    touch(tmp_path / "q", "det_500m.onnx", "r.onnx")
    first = model_id_of(tmp_path, "p")
    assert first.startswith("det_500m@") and "+r@" in first and "~" not in first
    assert model_id_of(tmp_path, "q") == first
    (tmp_path / "p" / "r.onnx").write_bytes(b"other weights")
    assert model_id_of(tmp_path, "p") != first
    (tmp_path / "q" / "pack.json").write_text(json.dumps({"recognizer_preprocessing": {"std": 128.0}}))
    assert model_id_of(tmp_path, "q").startswith(first + "~")


def test_model_id_ignores_how_the_manifest_spells_the_same_preprocessing(tmp_path: Path) -> None:
    spellings = [
        {"recognizer_preprocessing": {"std": 128}},
        {"recognizer_preprocessing": {"std": 128.0, "mean": 127.5, "rgb": True, "input_size": 112}},
        {"recognizer": "r.onnx", "licence": "x", "recognizer_preprocessing": {"std": 128.0}},
    ]
    ids = set()
    for index, manifest in enumerate(spellings):
        touch(tmp_path / f"p{index}", "det_500m.onnx", "r.onnx")
        (tmp_path / f"p{index}" / "pack.json").write_text(json.dumps(manifest))
        ids.add(model_id_of(tmp_path, f"p{index}"))
    assert len(ids) == 1
    touch(tmp_path / "plain", "det_500m.onnx", "r.onnx")
    (tmp_path / "plain" / "pack.json").write_text(json.dumps({"recognizer_preprocessing": {"input_size": 112}}))
    assert "~" not in model_id_of(tmp_path, "plain")
    touch(tmp_path / "bgr", "det_500m.onnx", "r.onnx")
    (tmp_path / "bgr" / "pack.json").write_text(json.dumps({"detector_preprocessing": {"rgb": False}}))
    assert model_id_of(tmp_path, "bgr") not in ids | {model_id_of(tmp_path, "plain")}


def test_calibration_the_folder_file_wins_else_a_shipped_file_with_the_same_model_id(tmp_path: Path) -> None:
    touch(tmp_path / "models" / "p", "det_500m.onnx", "r.onnx")
    pack = read_pack(tmp_path / "models", "p")
    model_id = pack_model_id(pack, pack_sha256(pack))
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "other.json").write_text(json.dumps({"format": 1, "model": {"id": "something-else"}}))
    (shipped / "broken.json").write_text("{")
    assert bundled_calibration(model_id, shipped) is None
    (shipped / "known.json").write_text(json.dumps({"format": 1, "model": {"id": model_id}}))
    assert bundled_calibration(model_id, shipped) == shipped / "known.json"
    assert calibration_for(pack, model_id) == pack.calibration_path  # nothing shipped for fake files
    pack.calibration_path.write_text("{}")
    assert calibration_for(pack, model_id) == pack.calibration_path


# --- the real test pack (more in tests/packs/) ------------------------------------------------


@needs_shared
def test_uncalibrated_pack_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    make_pack(tmp_path)
    with pytest.raises(ModelPackError, match="COMPAREFACES_MODEL=testpack comparefaces calibrate DIR --out"):
        load_engine(settings_for(tmp_path))


@needs_shared
def test_calibration_for_other_files_is_refused(tmp_path: Path) -> None:
    folder = make_pack(tmp_path)
    calibration = {
        "format": 1,
        "model": {"id": "det_500m@000000000000+mobilefacenet_128d@000000000000"},
        "pair_types": {"FacePic-FacePic": {"cosine_at_far": {"0.01": 0.2, "0.001": 0.3, "0.0001": 0.4}}},
    }
    (folder / "calibration.json").write_text(json.dumps(calibration))
    assert load_pack_models(settings_for(tmp_path)).calibration_path == folder / "calibration.json"
    with pytest.raises(ModelPackError, match="not 'det_500m@5e4447f50245.*comparefaces calibrate"):
        load_engine(settings_for(tmp_path))
