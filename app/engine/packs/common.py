"""What every model pack shares: the models it loads, its errors, file checks, network builders."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from app.engine.runtime import Network, onnxruntime_network, open_network
from app.engine.types import Detector, Recognizer
from app.settings import Settings

DEFAULT_PACK = "default"  # the embedded pack; no folder may take its name
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
    flip_portraits: bool = False  # FacePipeline: ID portraits embedded with their mirror image too


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified(path: Path, expected_sha256: str) -> Path:
    if not path.is_file():
        raise ModelPackError(f"model file missing: {path}")
    actual = file_sha256(path)
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
