"""A real insightface-style pack (SCRFD-500M + MobileFaceNet-128d from ../shared/models): refused
while uncalibrated, calibrated with ``comparefaces calibrate``, served by the real server, compared
over HTTP; and the pack path's promises (any SCRFD input size, fixed or free batch, any embedding
size, largest face by pure area, the shipped calibration of a known pack)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from app.cli import main
from app.engine.build import load_engine
from app.engine.calibration import Calibration
from app.engine.engine import largest_face
from app.engine.geometry import align_face
from app.engine.packs import BUNDLED_CALIBRATIONS, ModelPackError
from app.engine.packs.folder import load_pack_models, read_pack
from app.engine.recognizer import FixedBatchRecognizer, OnnxRecognizer, RecognizerPreprocessing
from app.engine.runtime import onnxruntime_network
from app.engine.scrfd import ScrfdDetector
from app.engine.strata import STRATA
from app.settings import Settings
from app.tools.dataset import id_style_version
from app.tools.models import list_models
from tests.helpers.images import encode
from tests.helpers.server import free_port, run_server

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MODELS = SHARED / "models"
LFW = SHARED / "data" / "lfw-dev"
PAIRS = SHARED / "data" / "lfw-dev-pairs.txt"
DETECTOR, RECOGNIZER = MODELS / "det_500m.onnx", MODELS / "mobilefacenet_128d.onnx"
CALIBRATION_PEOPLE = 60
SHIPPED_MANIFEST = {
    "detector": "det_500m.onnx",
    "recognizer": "mobilefacenet_128d.onnx",
    "recognizer_preprocessing": {"std": 128.0},
}

pytestmark = pytest.mark.skipif(
    not (DETECTOR.is_file() and RECOGNIZER.is_file() and LFW.is_dir()),
    reason=f"needs ../shared/models/det_500m.onnx, mobilefacenet_128d.onnx and ../shared/data/lfw-dev at {SHARED}",
)


def make_pack(models_dir: Path, name: str, manifest: dict[str, object] | None = None) -> Path:
    folder = models_dir / name
    folder.mkdir(parents=True)
    for source in (DETECTOR, RECOGNIZER):
        (folder / source.name).symlink_to(source)
    if manifest is not None:
        (folder / "pack.json").write_text(json.dumps(manifest))
    return folder


def people_with_two_photos() -> list[list[Path]]:
    people = []
    for person in sorted(p for p in LFW.iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) >= 2:
            people.append(photos)
    return people


def subset(target: Path, people: list[list[Path]], photos_each: int = 4) -> Path:
    """A DIR/<person>/<photos> tree of symlinks."""
    for photos in people:
        folder = target / photos[0].parent.name
        folder.mkdir(parents=True)
        for photo in photos[:photos_each]:
            (folder / photo.name).symlink_to(photo)
    return target


def env_for(models_dir: Path, name: str) -> dict[str, str]:
    return {
        "COMPAREFACES_MODEL": name,
        "COMPAREFACES_MODELS_DIR": str(models_dir),
        "COMPAREFACES_INTRA_OP_THREADS": "1",
    }


@dataclass
class CalibratedPack:
    models_dir: Path
    folder: Path
    settings: Settings
    calibration: dict[str, object]
    held_out: list[list[Path]]  # people the calibration never saw


@pytest.fixture(scope="module")
def calibrated_pack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalibratedPack]:
    """An uncalibrated pack (no manifest: a model id nothing is shipped for), calibrated by the CLI
    on 60 LFW people."""
    root = tmp_path_factory.mktemp("packs")
    models_dir = root / "models"
    folder = make_pack(models_dir, "scrfd-mbf")
    people = people_with_two_photos()
    photos = subset(root / "lfw-60", people[:CALIBRATION_PEOPLE])
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env_for(models_dir, "scrfd-mbf").items():
            patch.setenv(key, value)
        status = main(
            ["calibrate", str(photos), "--out", str(folder / "calibration.json"), "--description", "60 people"]
        )
    assert status == 0
    settings = Settings(model="scrfd-mbf", models_dir=models_dir, intra_op_threads=1, access_keys_file=None)
    yield CalibratedPack(
        models_dir, folder, settings, json.loads((folder / "calibration.json").read_text()), people[-40:]
    )


def test_uncalibrated_pack_refuses_to_start_and_names_the_command(tmp_path: Path) -> None:
    make_pack(tmp_path / "models", "fresh")
    env = {**os.environ, **env_for(tmp_path / "models", "fresh"), "COMPAREFACES_PORT": str(free_port())}
    done = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2
    assert "\ncomparefaces: model pack 'fresh'" in done.stderr
    assert "is not calibrated" in output
    assert "COMPAREFACES_MODEL=fresh comparefaces calibrate DIR --out" in output
    assert "Traceback" not in output


def test_calibration_file_records_model_dataset_and_thresholds(calibrated_pack: CalibratedPack) -> None:
    data = calibrated_pack.calibration
    model = data["model"]
    assert isinstance(model, dict)
    assert model["id"] == load_pack_models(calibrated_pack.settings).model_id
    assert model["sha256"]["det_500m.onnx"].startswith("5e4447f5")
    assert model["sha256"]["mobilefacenet_128d.onnx"].startswith("0c9ad2a8")
    dataset = data["dataset"]
    assert isinstance(dataset, dict) and dataset["people"] == CALIBRATION_PEOPLE
    pair_types = data["pair_types"]
    assert isinstance(pair_types, dict) and set(pair_types) == {"FacePic-FacePic", "FacePic-IDPic"}
    for entry in pair_types.values():
        assert entry["genuine_pairs"] > 100 and entry["impostor_pairs"] > 10_000
        cosines = [entry["cosine_at_far"][far] for far in ("0.01", "0.001", "0.0001", "0.00001")]
        assert cosines == sorted(cosines) and -1 < cosines[0] < cosines[-1] < 1


def test_models_list_shows_the_pack_calibrated(calibrated_pack: CalibratedPack) -> None:
    text = "\n".join(list_models(calibrated_pack.settings))
    assert "scrfd-mbf  [calibrated]" in text
    assert "licence: not stated" in text  # no manifest


def compare_form(
    first: bytes, second: bytes, first_type: str = "FacePic", second_type: str = "FacePic"
) -> dict[str, str]:
    import base64

    return {
        "Action": "CompareFaces",
        "Version": "2019-03-07",
        "SourceImageType": first_type,
        "SourceImageValue": "base64://" + base64.b64encode(first).decode(),
        "TargetImageType": second_type,
        "TargetImageValue": "base64://" + base64.b64encode(second).decode(),
    }


def test_served_pack_tells_same_person_from_different_people(calibrated_pack: CalibratedPack) -> None:
    """Over HTTP, on people the calibration never saw."""
    people = calibrated_pack.held_out[:8]
    same_pairs = [(photos[0], photos[1]) for photos in people]
    different_pairs = [(people[i][0], people[(i + 1) % len(people)][1]) for i in range(len(people))]
    calibration = Calibration.from_dict(calibrated_pack.calibration)
    face_pair_thresholds = [
        {far: f"{value:.2f}" for far, value in calibration.thresholds("FacePic-FacePic", stratum).items()}
        for stratum in (*STRATA, None)
    ]
    with run_server(calibrated_pack.settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        ready = client.get("/readyz").json()
        assert ready["model"] == load_pack_models(calibrated_pack.settings).model_id

        def score(first: Path, second: Path) -> float:
            response = client.post("/", data=compare_form(first.read_bytes(), second.read_bytes()))
            assert response.status_code == 200, response.text
            body = response.json()
            assert json.loads(body["Data"]["ConfidenceThresholds"]) in face_pair_thresholds  # the pair's stratum's
            return float(body["Data"]["SimilarityScore"])

        same = [score(a, b) for a, b in same_pairs]
        different = [score(a, b) for a, b in different_pairs]

        # An ID-card style portrait (102x126 JPEG) of one photo against another photo of the person.
        first, second = same_pairs[0]
        image = cv2.imread(str(first))
        assert image is not None
        engine = load_engine(calibrated_pack.settings)
        portrait = encode(id_style_version(image, largest_face(engine.detector.detect(image)).box), quality=80)
        id_response = client.post("/", data=compare_form(second.read_bytes(), portrait, "FacePic", "IDPic"))
    assert min(same) > 70 > max(different), (same, different)
    assert np.median(same) > 80
    id_data = id_response.json()["Data"]
    id_thresholds = json.loads(id_data["ConfidenceThresholds"])
    assert list(id_thresholds) == ["0.0001", "0.001", "0.01"]
    assert id_data["SimilarityScore"] > float(id_thresholds["0.01"])


@pytest.mark.skipif(not PAIRS.is_file(), reason=f"needs {PAIRS}")
def test_evaluate_runs_on_the_pack(
    calibrated_pack: CalibratedPack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    held_out = subset(tmp_path / "held-out", calibrated_pack.held_out, photos_each=3)
    for key, value in env_for(calibrated_pack.models_dir, "scrfd-mbf").items():
        monkeypatch.setenv(key, value)
    assert main(["evaluate", str(held_out), "--pairs", str(PAIRS)]) == 0
    out = capsys.readouterr().out
    assert "FacePic-FacePic:" in out and "FacePic-IDPic:" in out and "10-fold accuracy" in out


# --- what the pack path promises, on the real models ----------------------------------------------


def test_known_pack_is_calibrated_by_the_shipped_file(tmp_path: Path) -> None:
    """The same files + preprocessing in any folder name pick up app/calibrations/<pack>.json."""
    shipped = BUNDLED_CALIBRATIONS / "scrfd500m-mbf128.json"
    assert shipped.is_file()
    make_pack(tmp_path, "my-own-name", {**SHIPPED_MANIFEST, "licence": "mixed"})
    settings = Settings(model="my-own-name", models_dir=tmp_path, intra_op_threads=1)
    engine = load_engine(settings)
    assert engine.model_id == json.loads(shipped.read_text())["model"]["id"]
    assert "my-own-name  [calibrated: shipped scrfd500m-mbf128.json]" in "\n".join(list_models(settings))
    # The folder's own file wins over the shipped one, even a stale one (reported, not bypassed).
    (tmp_path / "my-own-name" / "calibration.json").write_text(
        json.dumps({**json.loads(shipped.read_text()), "model": {"id": "something-else"}})
    )
    with pytest.raises(ModelPackError, match="comparefaces calibrate"):
        load_engine(settings)


@pytest.mark.parametrize("path", sorted(BUNDLED_CALIBRATIONS.glob("*.json")), ids=lambda path: path.name)
def test_every_shipped_calibration_loads_and_covers_both_pair_types(path: Path) -> None:
    calibration = Calibration.load(path)
    assert set(calibration.cosine_at_far) == {"FacePic-FacePic", "FacePic-IDPic"}
    data = calibration.raw
    assert data["dataset"]["populations"]["lfw-dev"]["people"] == 2954 and data["model"]["sha256"]
    assert data["dataset"]["populations"]["asian-dev"]["people"] == 394
    for entry in data["pair_types"].values():
        assert entry["impostor_pairs"] > 20_000_000 and entry["genuine_pairs"] > 150_000
        populations = entry["populations"]
        for far, cosine in entry["cosine_at_far"].items():  # the strictest of those that can measure the key
            decided = populations.get(entry["decided_by"][far])
            assert decided is None or decided["cosine_at_far"][far] <= cosine
            big = ("lfw-dev", "asian-dev") if far != "0.00001" else ("lfw-dev",)  # they measure these keys
            assert all(populations[name]["cosine_at_far"][far] <= cosine for name in big if name in populations)
        for part in entry.get("strata", {}).values():  # per stratum: never looser than measured, keys in order
            assert list(part["cosine_at_far"].values()) == sorted(part["cosine_at_far"].values())
    others = [p for p in BUNDLED_CALIBRATIONS.glob("*.json") if p != path]
    assert calibration.model_id not in {Calibration.load(p).model_id for p in others}


def lfw_image(person: str, number: int) -> np.ndarray:
    image = cv2.imread(str(LFW / person / f"{person}_{number:04d}.jpg"))
    assert image is not None
    return image


@pytest.mark.parametrize("side", [160, 256, 320, 480, 640, 1024])
def test_scrfd_at_any_input_size_finds_the_same_landmarks(side: int) -> None:
    reference = ScrfdDetector(onnxruntime_network(DETECTOR, "cpu", 1), target_side=320, score_threshold=0.5)
    detector = ScrfdDetector(onnxruntime_network(DETECTOR, "cpu", 1), target_side=side, score_threshold=0.5)
    image = lfw_image("Al_Gore", 1)
    expected = largest_face(reference.detect(image)).landmarks
    found = largest_face(detector.detect(image)).landmarks
    assert np.abs(found - expected).max() < 6  # pixels of a 250x250 photo


def with_fixed_dims(source: Path, target: Path, dims: dict[int, int]) -> Path:
    """A copy of an ONNX graph whose first input has these fixed dimensions (index -> size)."""
    import onnx

    model = onnx.load(str(source))
    shape = model.graph.input[0].type.tensor_type.shape
    for index, size in dims.items():
        shape.dim[index].Clear()
        shape.dim[index].dim_value = size
    for output in model.graph.output:  # let onnxruntime infer them again
        output.type.tensor_type.ClearField("shape")
    onnx.save(model, str(target))
    return target


def test_scrfd_exported_at_a_fixed_size_gets_canvases_of_that_size(tmp_path: Path) -> None:
    fixed = ScrfdDetector(
        onnxruntime_network(with_fixed_dims(DETECTOR, tmp_path / "det640.onnx", {2: 640, 3: 640}), "cpu", 1),
        target_side=320,
        score_threshold=0.5,
    )
    assert fixed.fixed_size == (640, 640) and fixed.target_side == 640
    free = ScrfdDetector(onnxruntime_network(DETECTOR, "cpu", 1), target_side=640, score_threshold=0.5)
    for image in (lfw_image("Al_Gore", 1), cv2.resize(lfw_image("Al_Gore", 1), (500, 300))):
        np.testing.assert_allclose(
            largest_face(fixed.detect(image)).landmarks, largest_face(free.detect(image)).landmarks, atol=1.0
        )


def aligned_crops(count: int) -> np.ndarray:
    detector = ScrfdDetector(onnxruntime_network(DETECTOR, "cpu", 1), target_side=320)
    crops = []
    for person, number in [("Al_Gore", 1), ("Al_Gore", 2), ("Ahmed_Chalabi", 1), ("Abel_Pacheco", 1)][:count]:
        image = lfw_image(person, number)
        crops.append(align_face(image, largest_face(detector.detect(image)).landmarks, 112))
    return np.stack(crops)


@pytest.mark.parametrize("batch", [1, 3])
def test_recognizer_exported_with_a_fixed_batch_gives_the_same_embeddings(tmp_path: Path, batch: int) -> None:
    prep = RecognizerPreprocessing(std=128.0)
    free = OnnxRecognizer(onnxruntime_network(RECOGNIZER, "cpu", 1), prep)
    fixed_file = with_fixed_dims(RECOGNIZER, tmp_path / "fixed.onnx", {0: batch})
    make_pack(tmp_path / "models", "fixed")
    (tmp_path / "models" / "fixed" / RECOGNIZER.name).unlink()
    fixed_file.rename(tmp_path / "models" / "fixed" / "mbf_fixed.onnx")
    (tmp_path / "models" / "fixed" / "pack.json").write_text(json.dumps({"recognizer_preprocessing": {"std": 128.0}}))
    settings = Settings(
        model="fixed", models_dir=tmp_path / "models", intra_op_threads=1, recognizer_backend="onnxruntime"
    )
    models = load_pack_models(settings)
    assert isinstance(models.recognizer, FixedBatchRecognizer) and models.recognizer.batch == batch
    crops = aligned_crops(4)  # 4 crops: several full batches and a padded last one
    expected = free.embed(crops)
    actual = models.recognizer.embed(crops)
    assert expected.shape == actual.shape == (4, 128)  # the embedding size comes from the graph
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    np.testing.assert_allclose(models.recognizer.embed(crops[:1]), expected[:1], atol=1e-5)


def test_pack_preprocessing_comes_from_the_manifest(tmp_path: Path) -> None:
    make_pack(tmp_path, "bgr", {"recognizer_preprocessing": {"rgb": False, "std": 128.0}})
    make_pack(tmp_path, "rgb", SHIPPED_MANIFEST)
    bgr = load_pack_models(Settings(model="bgr", models_dir=tmp_path, intra_op_threads=1))
    rgb = load_pack_models(Settings(model="rgb", models_dir=tmp_path, intra_op_threads=1))
    assert isinstance(bgr.recognizer, OnnxRecognizer) and isinstance(rgb.recognizer, OnnxRecognizer)
    assert bgr.recognizer.prep == RecognizerPreprocessing(input_size=112, rgb=False, mean=127.5, std=128.0)
    assert bgr.model_id != rgb.model_id  # a calibration of one does not serve the other
    crops = aligned_crops(1)
    np.testing.assert_allclose(bgr.recognizer.embed(crops), rgb.recognizer.embed(crops[..., ::-1].copy()), atol=1e-5)
    assert read_pack(tmp_path, "rgb").recognizer_prep == {"std": 128.0}


def test_largest_face_is_chosen_by_pure_area_not_by_centrality() -> None:
    """A small face in the centre and a big one at the edge: the big one is compared (insightface's
    own default would favour the centred one)."""
    detector = ScrfdDetector(onnxruntime_network(DETECTOR, "cpu", 1), target_side=640)
    big, small = lfw_image("Al_Gore", 1), cv2.resize(lfw_image("Ahmed_Chalabi", 1), (150, 150))
    group = np.full((400, 900, 3), 200, np.uint8)
    group[75:325, 0:250] = big
    group[125:275, 375:525] = small  # dead centre
    faces = detector.detect(group)
    assert len(faces) >= 2
    chosen = largest_face(faces)
    assert chosen.box[2] < 300  # the big face on the left edge
