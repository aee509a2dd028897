"""Pairs and the people behind them: false accepts counted by person pair, intervals that resample
people, and a key bound only where enough distinct person pairs stand behind it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.tools.calibrate import binds
from app.tools.pairs import pair_scores
from app.tools.rates import far_at, tar_at, wilson_interval
from tests.tools.test_rates_and_reports import synthetic_set


def twins_set(tmp_path: Path, people: int = 30, photos_each: int = 8):
    """People far apart, except persons 0 and 1, who look alike: every high impostor pair is theirs."""
    data = synthetic_set(tmp_path, people, photos_each, spread=0.3, seed=21)
    twins = data.labels <= 1
    data.face[twins] = data.face[data.labels == 0][0] + 0.05 * np.random.default_rng(3).normal(size=(twins.sum(), 32))
    data.face /= np.linalg.norm(data.face, axis=1, keepdims=True)
    return data


def test_every_impostor_pair_keeps_its_two_people(tmp_path: Path) -> None:
    data = synthetic_set(tmp_path, 25, 3, spread=0.6, seed=1)
    scores = pair_scores(data.face, data.face, data.labels, symmetric=True)
    assert scores.top.size == scores.impostor_total  # a small set: every pair's people are kept
    sims = data.face @ data.face.T
    i, j = np.triu_indices(len(data.labels), 1)
    impostor = data.labels[i] != data.labels[j]
    threshold = float(np.quantile(sims[i, j][impostor], 0.9))
    passing = impostor & (sims[i, j] >= np.float32(threshold))
    expected = {tuple(sorted(pair)) for pair in zip(data.labels[i][passing], data.labels[j][passing], strict=True)}
    assert scores.person_pairs_at_or_above(threshold) == len(expected)
    assert np.array_equal(np.sort(scores.genuine_people), np.sort(data.labels[i][~impostor]))


def test_false_accepts_of_one_pair_of_people_get_a_wide_interval_and_say_so(tmp_path: Path) -> None:
    data = twins_set(tmp_path)
    scores = pair_scores(data.face, data.face, data.labels, symmetric=True)
    threshold = float(scores.top[63])  # the 64 pairs between the twins' photos pass
    rate = far_at(scores, threshold)
    assert rate.count == 64 and rate.sources == 1
    wilson_low, wilson_high = wilson_interval(rate.count, rate.total)
    low, high = rate.interval
    assert rate.resampled is not None
    assert low <= wilson_low and high > 2 * wilson_high  # one pair of people: the pairs are not 64 chances
    assert rate.resampled[0] == 0.0  # a resample without one of the twins sees no false accept


def test_resampled_rates_centre_on_the_measured_rate_when_pairs_come_from_many_people(tmp_path: Path) -> None:
    data = synthetic_set(tmp_path, 120, 3, spread=0.6, seed=2)
    scores = pair_scores(data.face, data.face, data.labels, symmetric=True)
    threshold = float(scores.top[int(0.01 * scores.impostor_total)])
    rate = far_at(scores, threshold)
    assert rate.sources is not None and rate.sources > rate.count / 3  # 9 photo pairs a person pair
    assert rate.resampled is not None and rate.resampled[0] < rate.value < rate.resampled[1]
    assert abs(float(np.median(scores.resampled_far(threshold))) - rate.value) < 0.2 * rate.value
    genuine = tar_at(scores, float(np.median(scores.genuine)))
    assert genuine.sources == 120 and genuine.resampled is not None
    assert genuine.resampled[0] < genuine.value < genuine.resampled[1]


def test_face_to_id_pairs_count_both_orders_of_two_people(tmp_path: Path) -> None:
    data = synthetic_set(tmp_path, 40, 2, spread=0.6, seed=4)
    scores = pair_scores(data.face, data.id_style, data.labels, symmetric=False)
    assert scores.impostor_total == 80 * 78
    assert np.allclose(scores.resampled_far(-2.0), 1.0)  # every impostor pair passes in every resample


def test_a_key_binds_only_with_enough_distinct_person_pairs(tmp_path: Path) -> None:
    data = twins_set(tmp_path, people=30, photos_each=8)
    scores = pair_scores(data.face, data.face, data.labels, symmetric=True)
    allowed = int(scores.impostor_total * 0.001)  # 27 pairs may pass at 1e-3, all of them the twins'
    assert allowed >= 10 and scores.person_pairs_among_top(allowed) == 1
    assert not binds(scores, "0.001")
    assert binds(scores, "0.1")
