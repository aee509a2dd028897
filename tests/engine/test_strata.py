"""The stratum of a pair: young only when both faces may be under 18, unknown when not estimated."""

from __future__ import annotations

import numpy as np

from app.engine.strata import ADULT, MAY_BE_MINOR, STRATA, YOUNG, pair_stratum, stratum_codes


def test_a_pair_is_young_only_when_both_faces_may_be_minors() -> None:
    assert pair_stratum(0.9, 0.9) == YOUNG
    assert pair_stratum(0.9, 0.01) == ADULT
    assert pair_stratum(0.01, 0.01) == ADULT


def test_an_unsure_estimate_falls_into_the_young_stratum() -> None:
    assert pair_stratum(MAY_BE_MINOR, MAY_BE_MINOR) == YOUNG
    assert MAY_BE_MINOR < 0.5  # "may be": far less than likely


def test_a_face_without_an_estimate_leaves_the_stratum_unknown() -> None:
    assert pair_stratum(None, 0.9) is None


def test_codes_broadcast_over_pairs() -> None:
    left = np.array([0.9, 0.1, 0.5])
    codes = stratum_codes(left[:, None], left[None, :])
    assert codes.shape == (3, 3)
    assert [STRATA[c] for c in codes[0]] == [YOUNG, ADULT, YOUNG]
