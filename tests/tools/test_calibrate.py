"""Per-stratum thresholds (``comparefaces calibrate`` with estimated ages): each stratum measured on its
own impostor pairs, a stratum too small for a key falling back to the strictest measured threshold,
and evaluation of every pair at its stratum's thresholds, on synthetic embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.engine.calibration import Calibration
from app.engine.strata import ADULT, CHILD
from app.tools.calibrate import calibration_from_embeddings
from app.tools.dataset import EmbeddedSet
from app.tools.evaluate import evaluate_embeddings, print_report
from tests.tools.test_rates_and_reports import synthetic_set


def with_young_people(root: Path, people: int, young: int, seed: int) -> EmbeddedSet:
    """``people`` people, the first ``young`` of whom look young and alike (their faces crowd together)."""
    data = synthetic_set(root, people, 3, spread=0.6, seed=seed)
    is_young = data.labels < young
    crowd = np.random.default_rng(99).normal(size=32)  # the same crowd direction in every set drawn
    for embeddings in (data.face, data.id_style):
        embeddings[is_young] += 0.9 * crowd / np.linalg.norm(crowd)
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    data.face_age = np.where(is_young[:, None], [[12.0, 0.9]], [[40.0, 0.0]]).astype(np.float32)
    data.id_age = data.face_age.copy()
    return data


def test_each_stratum_is_measured_on_its_own_impostor_pairs(tmp_path: Path) -> None:
    data = with_young_people(tmp_path, 300, 100, seed=1)
    result = calibration_from_embeddings({"set": data}, {"id": "m"}, {})
    entry = result["pair_types"]["FacePic-FacePic"]
    pooled, young, adult = (
        entry["cosine_at_far"],
        entry["strata"][CHILD]["cosine_at_far"],
        entry["strata"][ADULT]["cosine_at_far"],
    )
    for far in ("0.01", "0.001"):
        assert young[far] > pooled[far] > adult[far]  # young pairs crowd: one threshold is wrong for both
        assert entry["strata"][CHILD]["populations"]["set"]["at_chosen"][far]["far"]["rate"] <= float(far)
    assert (
        entry["strata"][CHILD]["impostor_pairs"] + entry["strata"][ADULT]["impostor_pairs"] == entry["impostor_pairs"]
    )
    calibration = Calibration.from_dict(result)
    assert calibration.thresholds("FacePic-FacePic", CHILD)["0.001"] > calibration.thresholds("FacePic-FacePic")["0.01"]


def test_a_stratum_too_small_for_a_key_takes_the_strictest_measured_threshold(tmp_path: Path) -> None:
    data = with_young_people(tmp_path, 300, 12, seed=2)  # 12 young people: 594 young impostor pairs
    result = calibration_from_embeddings({"set": data}, {"id": "m"}, {})
    entry = result["pair_types"]["FacePic-FacePic"]
    young = entry["strata"][CHILD]
    assert not young["measured"]["0.001"]
    for far in ("0.001", "0.0001"):
        measured = [entry["cosine_at_far"][far]] + [
            part["cosine_at_far"][far] for part in entry["strata"].values() if part["measured"][far]
        ]
        assert young["cosine_at_far"][far] >= max(measured)  # never looser than any measured threshold


def test_every_pair_at_its_stratums_threshold_holds_on_people_not_tuned_on(tmp_path: Path, capsys) -> None:
    tuned = with_young_people(tmp_path / "a", 300, 100, seed=3)
    calibration = Calibration.from_dict(calibration_from_embeddings({"set": tuned}, {"id": "m"}, {}))
    unseen = with_young_people(tmp_path / "b", 300, 100, seed=4)
    report = evaluate_embeddings(calibration, "m", {"unseen": unseen})
    entry = report.groups["unseen"].pair_types["FacePic-FacePic"]
    assert set(entry.strata) == {CHILD, "young", ADULT}
    for far in ("0.01", "0.001"):
        assert not entry.per_request[far].flagged
        assert not entry.strata[CHILD].shipped[far].flagged
        assert entry.per_request[far].far.sources is not None
    assert entry.per_request["0.01"].tar.value > entry.shipped["0.01"].tar.value  # adults: more accepted
    print_report(report)
    out = capsys.readouterr().out
    assert "stratum child" in out and "every pair at its stratum's thresholds" in out and " per request |" in out
