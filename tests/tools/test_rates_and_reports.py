"""Measurement that cannot lie: exact FAR at any threshold with its interval, exclusions, groups,
person-level cross-validation and multi-population calibration, on synthetic embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.engine.calibration import Calibration
from app.tools.calibrate import calibration_from_embeddings, combine, print_summary
from app.tools.dataset import EmbeddedSet, Exclusions, photo_groups
from app.tools.evaluate import evaluate_embeddings, plot_det, print_report
from app.tools.pairs import pair_scores
from app.tools.rates import Rate, cross_validate, person_folds, wilson_interval


def synthetic_set(
    root: Path, people: int, photos_each: int, *, spread: float, seed: int, prefix: str = ""
) -> EmbeddedSet:
    """Each person a random direction; photos scattered around it by ``spread``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 32))
    names = [f"{prefix}person{p:03d}" for p in range(people)]
    labels = np.repeat(np.arange(people), photos_each)
    face = centres[labels] + spread * rng.normal(size=(labels.size, 32))
    id_style = centres[labels] + spread * rng.normal(size=(labels.size, 32))
    normalise = lambda v: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    photos = [root / names[label] / f"{names[label]}-{i % photos_each}.jpg" for i, label in enumerate(labels)]
    return EmbeddedSet(names, photos, labels, normalise(face), normalise(id_style), 0)


def test_wilson_interval_covers_the_rate_and_is_honest_at_zero() -> None:
    low, high = wilson_interval(0, 1000)
    assert low == 0 and 0.003 < high < 0.005  # "rule of three" territory
    low, high = wilson_interval(50, 1000)
    assert low < 0.05 < high and high - low < 0.03
    assert Rate(30, 10_000).significantly_above(0.001)
    assert not Rate(15, 10_000).significantly_above(0.001)  # 1.5x, but within the noise


def test_far_is_exact_however_large(tmp_path: Path) -> None:
    """Every impostor pair is kept: a FAR of 90% reads as 90%, not as the top-1% cap."""
    data = synthetic_set(tmp_path, 40, 3, spread=0.8, seed=1)
    scores = pair_scores(data.face, data.face, data.labels, symmetric=True)
    sims = data.face @ data.face.T
    upper = np.triu_indices(len(data.labels), 1)
    impostors = sims[upper][data.labels[upper[0]] != data.labels[upper[1]]]
    assert scores.impostor_total == impostors.size
    for threshold in (-0.5, 0.0, 0.1, 0.3):
        assert scores.impostors_at_or_above(threshold) == int((impostors >= np.float32(threshold)).sum())


def test_exclusions_drop_photos_people_and_pairs(tmp_path: Path) -> None:
    data = synthetic_set(tmp_path, 5, 2, spread=0.3, seed=2)
    listing = tmp_path / "exclude.txt"
    listing.write_text(
        "# reviewed\nperson000/person000-1.jpg\nperson001\nperson002\tperson003  # one person, two names\n"
    )
    kept, excluded = Exclusions.read(listing).apply(data)
    assert len(kept.photos) == 7 and "person000/person000-1.jpg" not in [kept.key(i) for i in range(7)]
    assert len(excluded) == 4  # 2 photos x 2 photos
    full = pair_scores(kept.face, kept.face, kept.labels, symmetric=True)
    less = pair_scores(kept.face, kept.face, kept.labels, symmetric=True, excluded=excluded)
    assert full.impostor_total - less.impostor_total == 4 and less.genuine.size == full.genuine.size


def test_groups_by_prefix_and_by_csv(tmp_path: Path) -> None:
    a = synthetic_set(tmp_path, 3, 2, spread=0.3, seed=3, prefix="chinese__")
    groups = photo_groups(a, "prefix")
    assert list(groups) == ["chinese"] and groups["chinese"].all()
    table = tmp_path / "groups.csv"
    table.write_text("path,group\nchinese__person000,first\nchinese__person001/chinese__person001-0.jpg,second\n")
    groups = photo_groups(a, str(table))
    assert groups["first"].sum() == 2 and groups["second"].sum() == 1 and groups["(unlisted)"].sum() == 3


def test_groups_by_a_label_column_combined_with_the_prefix(tmp_path: Path) -> None:
    """Matched impostors: same nationality (prefix) and same sex (a person,sex table per population)."""
    a = synthetic_set(tmp_path, 4, 2, spread=0.3, seed=3, prefix="korean__")
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "asian.csv").write_text(
        "person,sex,age_band,source\nkorean__person000,F,adult,hand\nkorean__person001,M,,model\n"
        "korean__person002,F,teen,model\n"
    )
    groups = photo_groups(a, f"prefix+{labels}/{{population}}.csv:sex", "asian")
    assert {name: int(mask.sum()) for name, mask in groups.items()} == {
        "korean-F": 4,
        "korean-M": 2,
        "korean-(unlisted)": 2,
    }
    by_age = photo_groups(a, f"{labels}/{{population}}.csv:age_band", "asian")
    assert by_age["(unlisted)"].sum() == 4 and by_age["teen"].sum() == 2
    with pytest.raises(ValueError, match="'person' and 'region'"):
        photo_groups(a, f"{labels}/asian.csv:region", "asian")


def test_folds_keep_each_person_whole() -> None:
    labels = np.repeat(np.arange(50), 3)
    folds = person_folds(labels, 5)
    for person in range(50):
        assert len(set(folds[labels == person])) == 1
    assert sorted(np.bincount(folds)) == [30] * 5


def test_cross_validated_rates_use_unseen_people(tmp_path: Path) -> None:
    data = synthetic_set(tmp_path, 120, 3, spread=0.9, seed=4)
    cv = cross_validate(data.face, data.face, data.labels, symmetric=True, excluded=np.zeros((0, 2), np.int64))
    total = pair_scores(data.face, data.face, data.labels, symmetric=True)
    assert cv.tar["0.01"].total == total.genuine.size  # every genuine pair scored once, in its own fold
    assert cv.far["0.01"].total < total.impostor_total  # only pairs within a fold
    low, high = cv.far["0.01"].interval
    assert low < 0.01 < high * 1.5


def test_calibration_takes_the_strictest_population_and_records_each(tmp_path: Path) -> None:
    easy = synthetic_set(tmp_path / "easy", 150, 3, spread=0.6, seed=5)
    hard = synthetic_set(tmp_path / "hard", 150, 3, spread=0.6, seed=6)
    hard.face = hard.face + 0.0  # same spread, but its people crowd together: impostors score higher
    crowd = np.random.default_rng(7).normal(size=32)
    hard.face = (hard.face + 0.8 * crowd / np.linalg.norm(crowd)).astype(np.float32)
    hard.face /= np.linalg.norm(hard.face, axis=1, keepdims=True)
    hard.id_style = hard.face.copy()
    result = calibration_from_embeddings({"easy": easy, "hard": hard}, {"id": "m"}, {"description": "test"})
    entry = result["pair_types"]["FacePic-FacePic"]
    for far in ("0.01", "0.001"):
        own = {name: entry["populations"][name]["cosine_at_far"][far] for name in ("easy", "hard")}
        assert entry["cosine_at_far"][far] == max(own.values())
        assert entry["decided_by"][far] == "hard"
        for name in own:  # the chosen threshold holds for both populations
            assert entry["populations"][name]["at_chosen"][far]["far"]["rate"] <= float(far)
    assert entry["impostor_pairs"] == sum(p["impostor_pairs"] for p in entry["populations"].values())
    calibration = Calibration.from_dict(result)
    assert calibration.score(entry["cosine_at_far"]["0.001"]) == pytest.approx(80)
    print_summary(result)


def test_a_population_too_small_for_a_key_does_not_bind_it(tmp_path: Path) -> None:
    big = pair_scores(
        *(lambda d: (d.face, d.face, d.labels))(synthetic_set(tmp_path, 200, 3, spread=0.6, seed=8)), symmetric=True
    )
    small = pair_scores(
        *(lambda d: (d.face, d.face, d.labels))(synthetic_set(tmp_path, 20, 3, spread=0.6, seed=9)), symmetric=True
    )
    combined = combine({"big": big, "small": small})
    assert combined["decided_by"]["0.0001"] == "big"  # 1,710 impostor pairs cannot measure 1e-4
    assert combined["cosine_at_far"]["0.0001"] >= combined["populations"]["big"]["cosine_at_far"]["0.0001"]


def test_evaluation_flags_a_key_that_does_not_hold_and_names_the_worst_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = synthetic_set(tmp_path / "lfw", 150, 3, spread=0.6, seed=10, prefix="west__")
    result = calibration_from_embeddings({"lfw": base}, {"id": "m"}, {"description": "one population"})
    calibration = Calibration.from_dict(result)
    crowded = synthetic_set(tmp_path / "asian", 100, 3, spread=0.6, seed=11, prefix="east__")
    shift = np.random.default_rng(12).normal(size=32)
    crowded.face = crowded.face + 0.8 * shift / np.linalg.norm(shift)
    crowded.face = (crowded.face / np.linalg.norm(crowded.face, axis=1, keepdims=True)).astype(np.float32)
    report = evaluate_embeddings(
        calibration, "m", {"lfw": base, "asian": crowded}, groups=["prefix"], folds=3, plot=tmp_path / "det.png"
    )
    assert set(report.groups) == {"lfw", "asian"}  # a grouping of one group is the population itself
    east = report.groups["asian"].pair_types["FacePic-FacePic"].shipped["0.001"]
    west = report.groups["lfw"].pair_types["FacePic-FacePic"].shipped["0.001"]
    assert east.flagged and east.far.value > 0.01  # reported in full, far past any top-1% cap
    assert not west.flagged and west.far.value <= 0.001
    assert report.worst_group("FacePic-FacePic")[0] == "asian"  # type: ignore[index]
    assert (tmp_path / "det.png").stat().st_size > 10_000
    print_report(report)
    out = capsys.readouterr().out
    assert "! shipped FAR   0.001" in out and "cross-validated (3 folds" in out and "worst group" in out
    plot_det(report, tmp_path / "again.png")


def test_a_crowded_group_binds_the_thresholds_when_groups_are_populations(tmp_path: Path) -> None:
    """Pooled, a crowded group's impostor pairs are diluted by easy pairs across groups; as a
    population of its own it sets the threshold."""
    loose = synthetic_set(tmp_path, 150, 3, spread=0.6, seed=13, prefix="loose__")
    crowded = synthetic_set(tmp_path, 150, 3, spread=0.6, seed=14, prefix="crowded__")
    shift = np.random.default_rng(15).normal(size=32)
    crowded.face = crowded.face + 0.8 * shift / np.linalg.norm(shift)
    crowded.face = (crowded.face / np.linalg.norm(crowded.face, axis=1, keepdims=True)).astype(np.float32)
    crowded.id_style = crowded.face.copy()
    labels = np.concatenate([loose.labels, crowded.labels + 150])
    both = EmbeddedSet(
        loose.people + crowded.people,
        loose.photos + crowded.photos,
        labels,
        np.concatenate([loose.face, crowded.face]),
        np.concatenate([loose.id_style, crowded.id_style]),
        0,
    )
    pooled = calibration_from_embeddings({"set": both}, {"id": "m"}, {})
    grouped = calibration_from_embeddings({"set": both}, {"id": "m"}, {}, groups=["prefix"])
    entry = grouped["pair_types"]["FacePic-FacePic"]
    assert set(entry["populations"]) == {"set", "set:loose", "set:crowded"}
    assert entry["decided_by"]["0.001"] == "set:crowded"
    assert entry["cosine_at_far"]["0.001"] > pooled["pair_types"]["FacePic-FacePic"]["cosine_at_far"]["0.001"]
    assert entry["populations"]["set:crowded"]["at_chosen"]["0.001"]["far"]["rate"] <= 0.001
