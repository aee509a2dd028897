"""``comparefaces calibrate DIR --out FILE``: measure cosine thresholds per FAR on real pairs."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.engine.calibration import CALIBRATED_FARS, CALIBRATION_FORMAT, Calibration, threshold_at_far
from app.engine.packs import load_models
from app.settings import Settings
from app.tools.dataset import EmbeddedSet, PairScores, embed_directory, pair_scores

log = logging.getLogger(__name__)


def summarise(scores: PairScores) -> dict[str, Any]:
    cosine_at_far = {
        far: threshold_at_far(scores.impostor_top, scores.impostor_total, float(far)) for far in CALIBRATED_FARS
    }
    return {
        "genuine_pairs": int(scores.genuine.size),
        "impostor_pairs": int(scores.impostor_total),
        "cosine_at_far": {far: round(value, 6) for far, value in cosine_at_far.items()},
        "tar_at_far": {far: round(float((scores.genuine >= value).mean()), 5) for far, value in cosine_at_far.items()},
    }


def calibration_from_embeddings(data: EmbeddedSet, model: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    face_face = pair_scores(data.face, data.face, data.labels, symmetric=True)
    pair_types = {"FacePic-FacePic": summarise(face_face)}
    if len(data.id_style) == len(data.face):
        pair_types["FacePic-IDPic"] = summarise(pair_scores(data.face, data.id_style, data.labels, symmetric=False))
    return {
        "format": CALIBRATION_FORMAT,
        "model": model,
        "dataset": dataset,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pair_types": pair_types,
        "notes": (
            "cosine_at_far[far]: the cosine at or above which that share of impostor pairs scores. "
            "FacePic-IDPic pairs a photo with a 102x126 head-and-shoulders JPEG portrait made from "
            "another photo of the same (genuine) or another (impostor) person."
        ),
    }


def calibrate(settings: Settings, root: Path, out: Path, description: str = "") -> dict[str, Any]:
    models = load_models(settings)
    data = embed_directory(models, root)
    dataset = {
        "path_name": root.name,
        "description": description or f"{root.name}: one folder per person",
        "people": len(data.people),
        "photos": len(data.photos),
        "photos_without_face": data.missed,
    }
    model = {"id": models.model_id, "sha256": models.file_sha256}
    result = calibration_from_embeddings(data, model, dataset)
    Calibration.from_dict(result)  # refuse to write what the server would refuse to load
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s", out)
    return result


def print_summary(result: dict[str, Any]) -> None:
    for name, entry in result["pair_types"].items():
        print(f"{name}: {entry['genuine_pairs']} genuine, {entry['impostor_pairs']} impostor pairs")
        for far, cosine in entry["cosine_at_far"].items():
            print(f"  FAR {far:>8}: cosine >= {cosine:.4f}  TAR {entry['tar_at_far'][far]:.4f}")
