"""``comparefaces models list|download``: never touches the network (download reuses an archive
already in the cache folder)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from app.cli import main
from app.engine.packs.folder import pack_model_id, pack_sha256, read_pack
from app.settings import Settings
from app.tools.models import download, list_models


def settings_for(tmp_path: Path) -> Settings:
    return Settings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache")


def write_pack(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "det_500m.onnx").write_bytes(b"detector")
    (folder / "w600k_mbf.onnx").write_bytes(b"recognizer")


def write_calibration(path: Path, model_id: str) -> None:
    table = {"cosine_at_far": {"0.01": 0.2, "0.001": 0.3, "0.0001": 0.4, "0.00001": 0.5}}
    path.write_text(json.dumps({"format": 1, "model": {"id": model_id}, "pair_types": {"FacePic-FacePic": table}}))


def test_list_shows_default_and_each_pack_with_hashes_and_calibration_state(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    write_pack(settings.models_dir / "alpha")
    write_pack(settings.models_dir / "beta")
    (settings.models_dir / "empty").mkdir()
    beta = read_pack(settings.models_dir, "beta")
    write_calibration(beta.calibration_path, pack_model_id(beta, pack_sha256(beta)))
    text = "\n".join(list_models(settings))
    assert text.startswith("default  [")
    assert "alpha  [NOT CALIBRATED]" in text and "beta  [calibrated]" in text and "empty" not in text
    assert hashlib.sha256(b"detector").hexdigest() in text
    assert "COMPAREFACES_MODEL=alpha comparefaces calibrate DIR --out" in text
    write_calibration(beta.calibration_path, "beta:something-else")
    assert "beta  [STALE calibration" in "\n".join(list_models(settings))


def test_list_reports_an_unusable_pack_instead_of_failing(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    folder = settings.models_dir / "odd"
    folder.mkdir(parents=True)
    for name in ("a.onnx", "b.onnx"):
        (folder / name).write_bytes(name.encode())
    assert any(line.startswith("odd  [UNUSABLE]") for line in list_models(settings))


def test_cli_models_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COMPAREFACES_MODELS_DIR", str(tmp_path / "models"))
    write_pack(tmp_path / "models" / "alpha")
    assert main(["models", "list"]) == 0
    assert "alpha  [NOT CALIBRATED]" in capsys.readouterr().out


def cached_archive(settings: Settings, name: str, members: dict[str, bytes]) -> str:
    archive = settings.cache_dir / "downloads" / f"{name}.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as bundle:
        for member, data in members.items():
            bundle.writestr(member, data)
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def test_download_installs_only_with_a_pinned_sha256(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for(tmp_path)
    members = {"buffalo_s/det_500m.onnx": b"d", "buffalo_s/w600k_mbf.onnx": b"r", "buffalo_s/genderage.onnx": b"g"}
    digest = cached_archive(settings, "buffalo_s", members)
    assert download(settings, "buffalo_s") == 2
    out = capsys.readouterr().out
    assert digest in out and "--sha256" in out
    assert not (settings.models_dir / "buffalo_s").exists()

    assert download(settings, "buffalo_s", sha256=digest) == 0
    folder = settings.models_dir / "buffalo_s"
    assert sorted(p.name for p in folder.iterdir()) == ["det_500m.onnx", "pack.json", "w600k_mbf.onnx"]
    manifest = json.loads((folder / "pack.json").read_text())
    assert manifest["recognizer"] == "w600k_mbf.onnx" and "non-commercial" in manifest["licence"]
    assert read_pack(settings.models_dir, "buffalo_s").detector.name == "det_500m.onnx"
    assert "non-commercial" in capsys.readouterr().out

    assert download(settings, "buffalo_s", sha256=digest) == 1  # already there
    assert download(settings, "buffalo_s", sha256=digest, force=True) == 0


def test_download_refuses_a_wrong_sha256_and_unknown_names(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    cached_archive(settings, "buffalo_l", {"det_10g.onnx": b"d", "w600k_r50.onnx": b"r"})
    assert download(settings, "buffalo_l", sha256="0" * 64) == 1
    assert not (settings.cache_dir / "downloads" / "buffalo_l.zip").exists()
    assert not (settings.models_dir / "buffalo_l").exists()
    assert download(settings, "buffalo_xl") == 2
