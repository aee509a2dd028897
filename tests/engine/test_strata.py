"""The stratum of a pair, from how old its faces look: as old as its older-looking face, failing safe."""

from __future__ import annotations

import numpy as np

from app.engine.strata import ADULT, CHILD, STRATA, YOUNG, face_codes, pair_stratum, stratum_codes

TODDLER = (4.0, 0.99)
TEEN_OR_YOUNG_ADULT = (19.0, 0.3)
BABY_FACED_ADULT = (23.0, 0.01)  # under 25: looks young
ADULT_WHO_MIGHT_BE_A_MINOR = (31.0, 0.08)  # a real chance of under 18: looks young
ADULT_FACE = (41.0, 0.0)


def test_a_pair_is_as_old_as_its_older_looking_face() -> None:
    assert pair_stratum(TODDLER, TODDLER) == CHILD
    assert pair_stratum(TODDLER, TEEN_OR_YOUNG_ADULT) == YOUNG
    assert pair_stratum(TODDLER, ADULT_FACE) == ADULT
    assert pair_stratum(BABY_FACED_ADULT, ADULT_WHO_MIGHT_BE_A_MINOR) == YOUNG
    assert pair_stratum(ADULT_FACE, ADULT_FACE) == ADULT


def test_any_real_chance_of_under_18_or_an_apparent_age_under_25_looks_young() -> None:
    codes = face_codes(np.array([BABY_FACED_ADULT, ADULT_WHO_MIGHT_BE_A_MINOR, ADULT_FACE]))
    assert [STRATA[c] for c in codes] == [YOUNG, YOUNG, ADULT]


def test_a_face_without_an_estimate_leaves_the_stratum_unknown() -> None:
    assert pair_stratum(None, TODDLER) is None


def test_codes_broadcast_over_pairs() -> None:
    faces = face_codes(np.array([TODDLER, BABY_FACED_ADULT, ADULT_FACE]))
    codes = stratum_codes(faces[:, None], faces[None, :])
    assert codes.shape == (3, 3)
    assert [STRATA[c] for c in codes[0]] == [CHILD, YOUNG, ADULT]
