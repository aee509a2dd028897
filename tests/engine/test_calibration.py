import numpy as np
import pytest

from app.engine.calibration import Calibration, CalibrationError, threshold_at_far

DATA = {
    "format": 1,
    "model": {"id": "m"},
    "pair_types": {
        "FacePic-FacePic": {"cosine_at_far": {"0.01": 0.30, "0.001": 0.40, "0.0001": 0.50, "0.00001": 0.58}},
        "FacePic-IDPic": {"cosine_at_far": {"0.01": 0.28, "0.001": 0.39, "0.0001": 0.52, "0.00001": 0.6}},
    },
}


def test_score_scale_is_anchored_monotonic_and_bounded() -> None:
    calibration = Calibration.from_dict(DATA)
    assert calibration.score(0.30) == pytest.approx(70)
    assert calibration.score(0.40) == pytest.approx(80)
    assert calibration.score(0.50) == pytest.approx(90)
    assert calibration.score(-1) == 0 and calibration.score(1) == 100
    grid = np.linspace(-1, 1, 2001)
    scores = [calibration.score(c) for c in grid]
    assert all(b > a for a, b in zip(scores, scores[1:], strict=False))


def test_thresholds_follow_the_pair_type() -> None:
    calibration = Calibration.from_dict(DATA)
    assert calibration.thresholds("FacePic-FacePic") == pytest.approx({"0.0001": 90, "0.001": 80, "0.01": 70})
    id_pairs = calibration.thresholds("FacePic-IDPic")
    assert list(id_pairs) == ["0.0001", "0.001", "0.01"]
    assert id_pairs["0.0001"] > 90 and id_pairs["0.01"] < 70


def test_non_increasing_thresholds_are_refused() -> None:
    broken = {**DATA, "pair_types": {"FacePic-FacePic": {"cosine_at_far": {"0.01": 0.5, "0.001": 0.4, "0.0001": 0.6}}}}
    with pytest.raises(CalibrationError):
        Calibration.from_dict(broken)


def test_threshold_at_far_lets_through_at_most_that_share() -> None:
    impostors = np.sort(np.random.default_rng(1).normal(0, 0.1, 100_000))[::-1]
    for far in (0.01, 0.001, 0.0001):
        threshold = threshold_at_far(impostors, impostors.size, far)
        passed = (impostors >= threshold).sum()
        assert passed == int(far * impostors.size)


STRATIFIED = {
    **DATA,
    "pair_types": {
        "FacePic-FacePic": {
            "cosine_at_far": {"0.01": 0.30, "0.001": 0.40, "0.0001": 0.50},
            "strata": {
                "young": {"cosine_at_far": {"0.01": 0.42, "0.001": 0.52, "0.0001": 0.52}},
                "adult": {"cosine_at_far": {"0.01": 0.28, "0.001": 0.37, "0.0001": 0.49}},
            },
        }
    },
}


def test_a_pair_gets_its_stratums_thresholds_on_the_one_score_scale() -> None:
    calibration = Calibration.from_dict(STRATIFIED)
    young = calibration.thresholds("FacePic-FacePic", "young")
    adult = calibration.thresholds("FacePic-FacePic", "adult")
    assert young["0.001"] == pytest.approx(calibration.score(0.52)) and young["0.001"] > 80
    assert adult["0.001"] == pytest.approx(calibration.score(0.37)) and adult["0.001"] < 80
    assert calibration.score(0.40) == pytest.approx(80)  # SimilarityScore does not move with the stratum


def test_a_pair_whose_faces_were_not_estimated_gets_the_strictest_of_every_stratum() -> None:
    calibration = Calibration.from_dict(STRATIFIED)
    unknown = calibration.cosine_thresholds("FacePic-FacePic", None)
    assert unknown == {"0.01": 0.42, "0.001": 0.52, "0.0001": 0.52}
    assert calibration.cosine_thresholds("FacePic-IDPic", "young") == {"0.01": 0.42, "0.001": 0.52, "0.0001": 0.52}


def test_a_stratum_with_a_looser_stricter_key_is_refused() -> None:
    broken = {
        **DATA,
        "pair_types": {
            "FacePic-FacePic": {
                "cosine_at_far": {"0.01": 0.30, "0.001": 0.40, "0.0001": 0.50},
                "strata": {"young": {"cosine_at_far": {"0.01": 0.42, "0.001": 0.41, "0.0001": 0.52}}},
            }
        },
    }
    with pytest.raises(CalibrationError, match="young"):
        Calibration.from_dict(broken)
