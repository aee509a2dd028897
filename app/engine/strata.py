"""Which impostors a pair is measured against: its stratum, from how its two faces look.

Impostor scores depend on the people in the images, apparent age above all: two young faces look
alike to a recognizer far more often than two adults do, so one threshold per pair type is too loose
for children and too strict for adults. A pair's stratum picks the thresholds measured on the dev
impostor pairs of that stratum (the calibration file, written by ``comparefaces calibrate``).

The estimate can be wrong, so the rule fails safe: a pair is ``young`` (the stricter stratum) when
both faces *may* be under 18 (the age network puts at least ``MAY_BE_MINOR`` of its probability
below 18), and a pair whose faces were not estimated gets the strictest thresholds of all strata.
"""

from __future__ import annotations

import numpy as np

YOUNG = "young"
ADULT = "adult"
STRATA = (YOUNG, ADULT)
MAY_BE_MINOR = 0.25


def stratum_codes(p_minor_first: np.ndarray, p_minor_second: np.ndarray) -> np.ndarray:
    """Index into ``STRATA`` of each pair (broadcasting), from each face's probability of being under 18."""
    young = (np.asarray(p_minor_first) >= MAY_BE_MINOR) & (np.asarray(p_minor_second) >= MAY_BE_MINOR)
    return np.where(young, STRATA.index(YOUNG), STRATA.index(ADULT))


def pair_stratum(p_minor_first: float | None, p_minor_second: float | None) -> str | None:
    """The stratum of one pair; None when a face's age was not estimated (the strictest thresholds)."""
    if p_minor_first is None or p_minor_second is None:
        return None
    return STRATA[int(stratum_codes(np.asarray(p_minor_first), np.asarray(p_minor_second)))]


def explain(stratum: str | None) -> str:
    """Why a pair got its thresholds, in words for people (the demo page, ``comparefaces compare``)."""
    if stratum == YOUNG:
        return (
            "both faces may be under 18: the thresholds were measured on impostor pairs of young-looking "
            "faces, who look alike more often than adults, so they are stricter"
        )
    if stratum == ADULT:
        return "at least one face looks adult: the thresholds were measured on impostor pairs like these"
    return "the faces' ages were not estimated: the strictest thresholds of every kind of pair"
