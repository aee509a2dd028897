"""Which impostors a pair is measured against: its stratum, from how old its two faces look.

Impostor scores depend on the people in the images, apparent age above all. Measured on lfw-dev,
asian-dev and lab-dev (default pack, docs/models-and-calibration.md): pairs of two labelled children
or teenagers reach 26x the FAR 1e-3 key at the population's threshold, pairs of two young-looking
faces 1.5-3.4x on every population, pairs of one young and one adult face 0.6-0.8x, adults 0.9-1.1x.
Face size, sharpness, pose, background, colour and the embedding's norm do not move thresholds
consistently, so they are not strata. A pair's stratum picks the thresholds measured on the dev
impostor pairs of that stratum (the calibration file, written by ``comparefaces calibrate``).

Estimates can be wrong, so the rules fail safe: a face *looks young* on any real chance of being
under 18 (``MAY_BE_MINOR``) or an apparent age under ``YOUNG_BELOW_YEARS`` (97% of LFW's labelled
children and teenagers; low-quality images look younger, which errs the same way); the stricter
strata need *both* faces; and a pair whose faces were not estimated gets the strictest thresholds.
"""

from __future__ import annotations

import numpy as np

CHILD = "child"  # both faces more likely under 18 than not
YOUNG = "young"  # both faces look young
ADULT = "adult"  # at least one face looks adult
STRATA = (CHILD, YOUNG, ADULT)  # ordered from the youngest: a pair is as old as its older-looking face
LIKELY_MINOR = 0.5
MAY_BE_MINOR = 0.05
YOUNG_BELOW_YEARS = 25.0


def face_codes(apparent_age: np.ndarray) -> np.ndarray:
    """(..., 2) apparent (years, P(under 18)) -> index into ``STRATA`` of a face on its own."""
    years, p_minor = np.asarray(apparent_age)[..., 0], np.asarray(apparent_age)[..., 1]
    looks_young = (years < YOUNG_BELOW_YEARS) | (p_minor > MAY_BE_MINOR)
    return np.where(p_minor >= LIKELY_MINOR, 0, np.where(looks_young, 1, 2))


def stratum_codes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Index into ``STRATA`` of each pair of faces (face codes, broadcasting): the older-looking one's."""
    return np.maximum(first, second)


def pair_stratum(first: tuple[float, float] | None, second: tuple[float, float] | None) -> str | None:
    """The stratum of one pair; None when a face's age was not estimated (the strictest thresholds)."""
    if first is None or second is None:
        return None
    return STRATA[int(stratum_codes(face_codes(np.array(first)), face_codes(np.array(second))))]


def explain(stratum: str | None) -> str:
    """Why a pair got its thresholds, in words for people (the demo page, ``comparefaces compare``)."""
    if stratum == CHILD:
        return (
            "both faces look under 18: the thresholds are those measured on impostor pairs of children and "
            "young-looking faces, whichever is stricter (children look alike more often than adults)"
        )
    if stratum == YOUNG:
        return (
            "both faces look young: the thresholds were measured on impostor pairs of young-looking faces, "
            "who look alike more often than adults, so they are stricter"
        )
    if stratum == ADULT:
        return "at least one face looks adult: the thresholds were measured on impostor pairs like these"
    return "the faces' ages were not estimated: the strictest thresholds of every kind of pair"
