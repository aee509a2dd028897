"""Model packs from ``COMPAREFACES_MODELS_DIR``: one folder per pack holding an SCRFD detector, an
ArcFace-style recognizer, optionally ``pack.json`` (which file is which, preprocessing, licence)
and ``calibration.json`` (written by ``comparefaces calibrate``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.engine.packs.common import (
    BUNDLED_CALIBRATIONS,
    DEFAULT_PACK,
    LoadedModels,
    ModelPackError,
    detector_network,
    file_sha256,
    recognizer_network,
)
from app.engine.recognizer import RecognizerPreprocessing, graph_normalisation, recognizer_for
from app.engine.scrfd import DetectorPreprocessing, ScrfdDetector
from app.settings import Settings

MANIFEST = "pack.json"
CALIBRATION = "calibration.json"
DETECTOR_PREFIXES = ("det_", "scrfd")


@dataclass(frozen=True)
class PackFiles:
    """What a pack folder holds, resolved from its manifest and file names (no model loaded)."""

    name: str
    folder: Path
    detector: Path
    recognizer: Path
    detector_prep: DetectorPreprocessing
    recognizer_prep: dict[str, Any]  # RecognizerPreprocessing fields; input_size from the graph if absent
    licence: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def calibration_path(self) -> Path:
        return self.folder / CALIBRATION


def pack_names(models_dir: Path) -> list[str]:
    """Folders of ``models_dir`` that hold at least one .onnx file."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if p.is_dir() and any(p.glob("*.onnx")))


def pack_folder(models_dir: Path, name: str) -> Path:
    if name == DEFAULT_PACK:
        raise ModelPackError("'default' is the embedded pack, not a folder")
    if not name or name in {".", ".."} or "/" in name or "\\" in name:
        raise ModelPackError(f"invalid model pack name {name!r}: use a folder name under {models_dir}")
    folder = models_dir / name
    if not folder.is_dir():
        available = ", ".join([DEFAULT_PACK, *pack_names(models_dir)])
        raise ModelPackError(f"model pack '{name}' not found: no folder {folder} (available: {available})")
    return folder


def _named(folder: Path, manifest: dict[str, Any], key: str) -> Path | None:
    if key not in manifest:
        return None
    path = folder / str(manifest[key])
    if not path.is_file() or path.parent != folder:
        raise ModelPackError(f"{folder / MANIFEST} names {key} {manifest[key]!r}, which is not a file in {folder}")
    return path


def _pick(candidates: list[Path], role: str, folder: Path) -> Path:
    if len(candidates) != 1:
        names = ", ".join(p.name for p in candidates) or "none"
        raise ModelPackError(
            f"cannot tell which file in {folder} is the {role} (candidates: {names}); "
            f'name it in {MANIFEST}: {{"{role}": "FILE.onnx"}}'
        )
    return candidates[0]


def read_pack(models_dir: Path, name: str) -> PackFiles:
    folder = pack_folder(models_dir, name)
    manifest_path = folder / MANIFEST
    manifest: dict[str, Any] = {}
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelPackError(f"{manifest_path} is not valid JSON: {exc}") from exc
        if not isinstance(manifest, dict):
            raise ModelPackError(f"{manifest_path} must hold a JSON object")
    onnx_files = sorted(folder.glob("*.onnx"))
    detector = _named(folder, manifest, "detector") or _pick(
        [p for p in onnx_files if p.name.lower().startswith(DETECTOR_PREFIXES)], "detector", folder
    )
    recognizer = _named(folder, manifest, "recognizer") or _pick(
        [p for p in onnx_files if p != detector], "recognizer", folder
    )
    try:
        detector_prep = DetectorPreprocessing(**manifest.get("detector_preprocessing", {}))
        recognizer_prep = dict(manifest.get("recognizer_preprocessing", {}))
        RecognizerPreprocessing(**recognizer_prep)
    except TypeError as exc:
        raise ModelPackError(f"{manifest_path}: bad preprocessing entry: {exc}") from exc
    return PackFiles(
        name=name,
        folder=folder,
        detector=detector,
        recognizer=recognizer,
        detector_prep=detector_prep,
        recognizer_prep=recognizer_prep,
        licence=str(manifest.get("licence", "")),
        manifest=manifest,
    )


def _canonical(values: dict[str, Any]) -> dict[str, Any]:
    """Numbers as floats, so that ``128`` and ``128.0`` in a manifest give the same model id."""
    return {
        key: float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        for key, value in sorted(values.items())
    }


def pack_model_id(pack: PackFiles, sha256: dict[str, str]) -> str:
    """What the pack computes, independent of its folder name: file stems + hashes (+ a hash of
    the preprocessing the manifest sets, defaults filled in, so ``{"std": 128}`` and a manifest
    spelling out every default besides are the same pack). A calibration measured on other files
    or another preprocessing does not match; one measured on the same files in another folder does."""
    model_id = f"{pack.detector.stem}@{sha256[pack.detector.name][:12]}"
    model_id += f"+{pack.recognizer.stem}@{sha256[pack.recognizer.name][:12]}"
    defaults = asdict(RecognizerPreprocessing())
    recognizer = {"input_size": defaults["input_size"], "rgb": defaults["rgb"]}
    if {"mean", "std"} & set(pack.recognizer_prep):  # else the graph decides (graph_normalisation)
        recognizer |= {"mean": defaults["mean"], "std": defaults["std"]}
    recognizer |= pack.recognizer_prep
    prep = {"detector": _canonical(asdict(pack.detector_prep)), "recognizer": _canonical(recognizer)}
    baseline = {"input_size": defaults["input_size"], "rgb": defaults["rgb"]}
    if prep != {"detector": _canonical(asdict(DetectorPreprocessing())), "recognizer": _canonical(baseline)}:
        model_id += "~" + hashlib.sha256(json.dumps(prep, sort_keys=True).encode()).hexdigest()[:8]
    return model_id


def bundled_calibration(model_id: str, folder: Path = BUNDLED_CALIBRATIONS) -> Path | None:
    """The calibration file shipped in ``app/calibrations/`` for exactly this model id, if any."""
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        model = data.get("model") if isinstance(data, dict) else None
        if isinstance(model, dict) and model.get("id") == model_id:
            return path
    return None


def calibration_for(pack: PackFiles, model_id: str) -> Path:
    """The pack folder's own ``calibration.json`` when there is one (even a stale one: it is
    reported, not silently bypassed); else a shipped calibration of the same model id; else the
    folder's ``calibration.json`` path, which does not exist and makes the engine refuse to start."""
    if pack.calibration_path.is_file():
        return pack.calibration_path
    return bundled_calibration(model_id) or pack.calibration_path


def pack_sha256(pack: PackFiles) -> dict[str, str]:
    return {path.name: file_sha256(path) for path in (pack.detector, pack.recognizer)}


@dataclass(frozen=True)
class FolderPack:
    """Pack ``name``: a folder under ``settings.models_dir``."""

    name: str

    def load(self, settings: Settings) -> LoadedModels:
        pack = read_pack(settings.models_dir, self.name)
        sha256 = pack_sha256(pack)
        detector = ScrfdDetector(
            detector_network(pack.detector, settings),
            target_side=settings.detection_max_side,
            prep=pack.detector_prep,
            score_threshold=settings.min_detection_score,
        )
        graph_prep = {} if {"mean", "std"} & set(pack.recognizer_prep) else graph_normalisation(pack.recognizer)
        recognizer = recognizer_for(recognizer_network(pack.recognizer, settings), pack.recognizer_prep, graph_prep)
        model_id = pack_model_id(pack, sha256)
        return LoadedModels(
            model_id=model_id,
            detector=detector,
            recognizer=recognizer,
            calibration_path=calibration_for(pack, model_id),
            file_sha256=sha256,
        )


def load_pack_models(settings: Settings) -> LoadedModels:
    """The detector and recognizer of pack ``settings.model`` under ``settings.models_dir``."""
    return FolderPack(settings.model).load(settings)
