"""Calibration: measured cosine thresholds per pair type, and the score scale built on them.

A calibration file is versioned data (JSON), written by ``comparefaces calibrate``:

    {"format": 1, "model": {"id": ..., "sha256": {...}}, "dataset": {...},
     "pair_types": {"FacePic-FacePic": {"genuine_pairs": n, "impostor_pairs": m,
                                         "cosine_at_far": {"0.01": c, ...}}, ...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_FORMAT = 1
CALIBRATED_FARS = ("0.01", "0.001", "0.0001", "0.00001")
REPORTED_FARS = ("0.0001", "0.001", "0.01")  # the keys ConfidenceThresholds carries
# Clients hard-code 70/80/90 for FAR 1e-2/1e-3/1e-4 of face photo pairs.
SCORE_ANCHORS = {"0.01": 70.0, "0.001": 80.0, "0.0001": 90.0}
REFERENCE_PAIR_TYPE = "FacePic-FacePic"


class CalibrationError(ValueError):
    pass


@dataclass(frozen=True)
class Calibration:
    model_id: str
    cosine_at_far: dict[str, dict[str, float]]  # pair type -> FAR key -> cosine threshold
    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        if data.get("format") != CALIBRATION_FORMAT:
            raise CalibrationError(f"unsupported calibration format {data.get('format')!r}")
        table = {
            name: {far: float(value) for far, value in entry["cosine_at_far"].items()}
            for name, entry in data["pair_types"].items()
        }
        reference = table.get(REFERENCE_PAIR_TYPE, {})
        if any(far not in reference for far in SCORE_ANCHORS):
            raise CalibrationError(f"calibration lacks {REFERENCE_PAIR_TYPE} thresholds for {list(SCORE_ANCHORS)}")
        anchors = [reference[far] for far in ("0.01", "0.001", "0.0001")]
        if not (-1 < anchors[0] < anchors[1] < anchors[2] < 1):
            raise CalibrationError(f"calibration thresholds are not increasing: {anchors}")
        return cls(model_id=str(data["model"]["id"]), cosine_at_far=table, raw=data)

    @classmethod
    def load(cls, path: Path) -> Calibration:
        return cls.from_dict(json.loads(path.read_text()))

    def score(self, cosine: float) -> float:
        """Map a cosine to [0, 100]: piecewise linear, strictly increasing, continuous, with the
        face-photo thresholds for FAR 1e-2, 1e-3, 1e-4 on 70, 80, 90."""
        reference = self.cosine_at_far[REFERENCE_PAIR_TYPE]
        xs = [-1.0] + [reference[far] for far in ("0.01", "0.001", "0.0001")] + [1.0]
        ys = [0.0, 70.0, 80.0, 90.0, 100.0]
        return float(np.interp(np.clip(cosine, -1.0, 1.0), xs, ys))

    def thresholds(self, pair_type: str) -> dict[str, float]:
        """FAR key -> score threshold for this pair type (the keys ConfidenceThresholds reports)."""
        table = self.cosine_at_far.get(pair_type) or self.cosine_at_far[REFERENCE_PAIR_TYPE]
        return {far: self.score(table[far]) for far in REPORTED_FARS}


def threshold_at_far(impostor_scores_desc: np.ndarray, total_impostors: int, far: float) -> float:
    """Cosine threshold t with (#impostors scoring >= t) / total <= far, as tight as the data allows.

    ``impostor_scores_desc`` holds at least the top ``far * total + 1`` impostor cosines, sorted
    descending. t is half-way between the last score that may pass and the first that may not.
    """
    allowed = int(np.floor(far * total_impostors))
    if allowed + 1 > len(impostor_scores_desc):
        raise CalibrationError("not enough impostor scores kept for this FAR")
    if allowed == 0:
        return float(np.nextafter(impostor_scores_desc[0], np.inf))
    return float((impostor_scores_desc[allowed - 1] + impostor_scores_desc[allowed]) / 2)
