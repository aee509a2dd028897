"""Calibration: measured cosine thresholds per pair type, and the score scale built on them.

A calibration file is versioned data (JSON), written by ``comparefaces calibrate``:

    {"format": 1, "model": {"id": ..., "sha256": {...}}, "dataset": {...},
     "pair_types": {"FacePic-FacePic": {"genuine_pairs": n, "impostor_pairs": m,
                                         "cosine_at_far": {"0.01": c, ...},
                                         "strata": {"young": {"cosine_at_far": {...}, ...}, ...}}, ...}}

``cosine_at_far`` of a pair type holds for all its pairs; a stratum's (``app.engine.strata``) for the
pairs of that stratum. A pair's ConfidenceThresholds come from its stratum; SimilarityScore always
from the face-photo pair type's own table (one scale: clients that hard-code 70/80/90 keep its meaning).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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


def never_looser(table: dict[str, float]) -> bool:
    """A stricter FAR key never has a lower threshold (equal where a key fell back to a stricter one)."""
    values = [table[far] for far in CALIBRATED_FARS if far in table]
    return all(-1 < value < 1 for value in values) and values == sorted(values)


@dataclass(frozen=True)
class Calibration:
    model_id: str
    cosine_at_far: dict[str, dict[str, float]]  # pair type -> FAR key -> cosine threshold
    raw: dict[str, Any]
    strata: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # pair type -> stratum -> ...

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
        strata = {
            name: {
                stratum: {far: float(value) for far, value in part["cosine_at_far"].items()}
                for stratum, part in entry.get("strata", {}).items()
            }
            for name, entry in data["pair_types"].items()
        }
        for name, by_stratum in strata.items():
            for stratum, thresholds in by_stratum.items():
                if any(far not in thresholds for far in REPORTED_FARS) or not never_looser(thresholds):
                    raise CalibrationError(f"{name} stratum {stratum!r}: thresholds missing or decreasing")
        return cls(model_id=str(data["model"]["id"]), cosine_at_far=table, raw=data, strata=strata)

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

    def cosine_thresholds(self, pair_type: str, stratum: str | None = None) -> dict[str, float]:
        """FAR key -> cosine threshold for a pair of this type (the face-photo pair type's where the
        calibration lacks it) in this stratum. A pair type without strata has one table; an unknown
        stratum (None: the faces were not estimated) gets the strictest of its table and every stratum's."""
        kind = pair_type if pair_type in self.cosine_at_far else REFERENCE_PAIR_TYPE
        table, by_stratum = self.cosine_at_far[kind], self.strata.get(kind, {})
        if stratum in by_stratum:
            return by_stratum[stratum]
        return {far: max([table[far], *(part[far] for part in by_stratum.values() if far in part)]) for far in table}

    def thresholds(self, pair_type: str, stratum: str | None = None) -> dict[str, float]:
        """FAR key -> score threshold (the keys ConfidenceThresholds reports)."""
        table = self.cosine_thresholds(pair_type, stratum)
        return {far: self.score(table[far]) for far in REPORTED_FARS}

    def all_pairs_thresholds(self, pair_type: str) -> dict[str, float]:
        """FAR key -> score threshold measured on all pairs of this type, whatever their stratum (an
        answer without images: fault injection's fixed scores; face-photo pairs are exactly 70/80/90)."""
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
