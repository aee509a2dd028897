"""Model packs from a models folder: file resolution, model ids, real loading, calibrate-then-serve."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from app.engine.engine import largest_face
from app.engine.geometry import align_face
from app.engine.model_dir import load_pack_models, pack_model_id, pack_sha256, read_pack
from app.engine.packs import ModelPackError, load_engine
from app.settings import Settings

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
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


def test_model_id_follows_name_file_hashes_and_preprocessing(tmp_path: Path) -> None:
    touch(tmp_path / "p", "det_500m.onnx", "r.onnx")
    pack = read_pack(tmp_path, "p")
    first = pack_model_id(pack, pack_sha256(pack))
    assert first.startswith("p:det_500m@") and "+r@" in first
    (tmp_path / "p" / "r.onnx").write_bytes(b"other weights")
    assert pack_model_id(pack, pack_sha256(pack)) != first
    (tmp_path / "p" / "pack.json").write_text(json.dumps({"recognizer_preprocessing": {"std": 128.0}}))
    assert "~" in pack_model_id(read_pack(tmp_path, "p"), pack_sha256(pack))


# --- the real test pack ------------------------------------------------------------------------


def embed_photo(models_dir: Path, photos: list[Path]) -> np.ndarray:
    models = load_pack_models(settings_for(models_dir))
    crops = []
    for photo in photos:
        image = cv2.imread(str(photo))
        assert image is not None
        face = largest_face(models.detector.detect(image))
        x1, y1, x2, y2 = face.box
        assert ((face.landmarks >= [x1, y1]) & (face.landmarks <= [x2, y2])).all()
        crops.append(align_face(image, face.landmarks, models.recognizer.input_size))
    return models.recognizer.embed(np.stack(crops))


@needs_shared
@pytest.mark.parametrize("manifest", [None, {"recognizer_preprocessing": {"std": 128.0}, "licence": "mixed"}])
def test_real_pack_detects_and_embeds(tmp_path: Path, manifest: dict[str, object] | None) -> None:
    make_pack(tmp_path, manifest=manifest)
    models = load_pack_models(settings_for(tmp_path))
    assert models.recognizer.input_size == 112
    assert set(models.file_sha256) == set(PACK_FILES)
    assert models.file_sha256["det_500m.onnx"].startswith("5e4447f5")
    same_a, same_b = (
        LFW / "Akhmed_Zakayev" / "Akhmed_Zakayev_0001.jpg",
        LFW / "Akhmed_Zakayev" / "Akhmed_Zakayev_0003.jpg",
    )
    other = LFW / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    vectors = embed_photo(tmp_path, [same_a, same_b, other])
    assert vectors.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.5 > vectors[0] @ vectors[2]


@needs_shared
def test_uncalibrated_pack_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    make_pack(tmp_path)
    with pytest.raises(ModelPackError, match="comparefaces calibrate"):
        load_engine(settings_for(tmp_path))


@needs_shared
def test_calibration_for_other_files_is_refused(tmp_path: Path) -> None:
    folder = make_pack(tmp_path)
    calibration = {
        "format": 1,
        "model": {"id": "testpack:det_500m@000000000000+mobilefacenet_128d@000000000000"},
        "pair_types": {"FacePic-FacePic": {"cosine_at_far": {"0.01": 0.2, "0.001": 0.3, "0.0001": 0.4}}},
    }
    (folder / "calibration.json").write_text(json.dumps(calibration))
    with pytest.raises(ModelPackError, match="not 'testpack:det_500m@5e4447f50245"):
        load_engine(settings_for(tmp_path))


def small_lfw(target: Path, people: int = 40, photos_each: int = 4) -> Path:
    """The first ``people`` LFW people with at least two photos (up to ``photos_each``), symlinked."""
    chosen = 0
    for person in sorted(LFW.iterdir()):
        photos = sorted(person.glob("*.jpg"))[:photos_each]
        if len(photos) < 2:
            continue
        (target / person.name).mkdir(parents=True)
        for photo in photos:
            (target / person.name / photo.name).symlink_to(photo)
        chosen += 1
        if chosen == people:
            break
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served_pack(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    import uvicorn

    from app.api.factory import create_app
    from app.tools.calibrate import calibrate

    models_dir = tmp_path / "models"
    folder = make_pack(models_dir)
    settings = settings_for(models_dir, port=free_port(), host="127.0.0.1")
    result = calibrate(settings, small_lfw(tmp_path / "lfw"), folder / "calibration.json", "40 LFW people")
    assert result["model"]["sha256"]["mobilefacenet_128d.onnx"].startswith("0c9ad2a8")
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{settings.port}/", settings
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def compare_form(source: Path, target: Path) -> dict[str, str]:
    return {
        "Action": "CompareFaces",
        "Version": "2019-03-07",
        "SourceImageType": "FacePic",
        "SourceImageValue": "base64://" + base64.b64encode(source.read_bytes()).decode(),
        "TargetImageType": "FacePic",
        "TargetImageValue": "base64://" + base64.b64encode(target.read_bytes()).decode(),
    }


@needs_shared
def test_calibrated_pack_serves_compare_faces(served_pack: tuple[str, Settings]) -> None:
    url, settings = served_pack
    assert load_engine(settings).model_id.startswith("testpack:")
    person = LFW / "Akhmed_Zakayev"
    with httpx.Client(timeout=30) as client:
        ready = client.get(url + "readyz").json()
        assert ready["model"].startswith("testpack:det_500m@")
        same = client.post(
            url, data=compare_form(person / "Akhmed_Zakayev_0001.jpg", person / "Akhmed_Zakayev_0003.jpg")
        )
        other = client.post(
            url, data=compare_form(person / "Akhmed_Zakayev_0001.jpg", LFW / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg")
        )
    assert same.status_code == 200, same.text
    same_score, other_score = same.json()["Data"]["SimilarityScore"], other.json()["Data"]["SimilarityScore"]
    assert 0 <= other_score < 70 < same_score <= 100
