"""Rates measured on counted pairs, with their 95% intervals, and thresholds checked on people they
were not tuned on (per-person cross-validation)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.engine.calibration import CALIBRATED_FARS, threshold_at_far
from app.tools.pairs import PairScores, pair_scores

Z95 = 1.959963984540054


def wilson_interval(count: int, total: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``count / total`` (honest at 0 and at small counts)."""
    if total <= 0:
        return 0.0, 1.0
    p = count / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    low = 0.0 if count == 0 else max(0.0, centre - half)
    high = 1.0 if count == total else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Rate:
    """``count`` of ``total`` pairs. ``resampled``: the 95% interval of the rate over resamples of the
    people behind the pairs (pairs of the same people are not independent: on a small set the Wilson
    interval over pairs is far too narrow); ``sources``: how many distinct person pairs the false accepts
    come from (FAR), or how many people the genuine pairs come from (TAR). ``interval`` is the wider
    of the two."""

    count: int
    total: int
    resampled: tuple[float, float] | None = None
    sources: int | None = None

    @property
    def value(self) -> float:
        return self.count / self.total if self.total else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        low, high = wilson_interval(self.count, self.total)
        if self.resampled is None:
            return low, high
        return min(low, self.resampled[0]), max(high, self.resampled[1])

    def significantly_above(self, target: float) -> bool:
        """The whole 95% interval lies above ``target``."""
        return self.total > 0 and self.interval[0] > target

    def __add__(self, other: Rate) -> Rate:
        """Counts summed (over folds); the people-resampled interval does not add up and is dropped."""
        return Rate(self.count + other.count, self.total + other.total)

    def as_dict(self) -> dict[str, float | int | None]:
        low, high = self.interval
        entry: dict[str, float | int | None] = {
            "count": self.count,
            "total": self.total,
            "rate": self.value if self.total else None,
            "low": low,
            "high": high,
        }
        if self.sources is not None:
            entry["sources"] = self.sources
        return entry


def percentile_interval(samples: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(samples, [2.5, 97.5]) if samples.size else (0.0, 1.0)
    return float(low), float(high)


def far_at(scores: PairScores, threshold: float) -> Rate:
    """FAR at ``threshold``, every impostor pair counted, with its people-resampled interval and the
    number of distinct person pairs behind it (where the pairs' people were kept)."""
    return far_across([(scores, threshold)])


def tar_at(scores: PairScores, threshold: float) -> Rate:
    return tar_across([(scores, threshold)])


def far_across(parts: Sequence[tuple[PairScores, float]]) -> Rate:
    """FAR over several sets of pairs of the same people (the strata of a population), each at its own
    threshold: what a request meets when its thresholds are its stratum's."""
    count = sum(scores.impostors_at_or_above(t) for scores, t in parts)
    total = sum(scores.impostor_total for scores, _ in parts)
    if not all(scores.knows_people_at(t) and scores.photos_per_person.size for scores, t in parts):
        return Rate(count, total)
    passed, pairs = (sum(counts) for counts in zip(*(s.resampled_counts(t) for s, t in parts), strict=True))
    behind = [scores.impostor_people_at_or_above(t)[0] for scores, t in parts]
    everyone = np.concatenate(behind) if behind else np.zeros((0, 2), np.int64)
    return Rate(
        count,
        total,
        resampled=percentile_interval(np.divide(passed, pairs, out=np.zeros_like(passed), where=pairs > 0)),
        sources=len(np.unique(everyone, axis=0)) if everyone.size else 0,
    )


def tar_across(parts: Sequence[tuple[PairScores, float]]) -> Rate:
    """TAR over several sets of genuine pairs (the strata of a population), each at its own threshold."""
    count = sum(scores.genuine_at_or_above(t) for scores, t in parts)
    total = sum(int(scores.genuine.size) for scores, _ in parts)
    if not all(s.genuine_people.size == s.genuine.size and s.photos_per_person.size for s, _ in parts):
        return Rate(count, total)
    passed, pairs = (sum(counts) for counts in zip(*(s.resampled_genuine(t) for s, t in parts), strict=True))
    people = np.unique(np.concatenate([scores.genuine_people for scores, _ in parts]))
    return Rate(
        count,
        total,
        resampled=percentile_interval(np.divide(passed, pairs, out=np.zeros_like(passed), where=pairs > 0)),
        sources=int(people.size),
    )


def own_threshold(scores: PairScores, far: str) -> float | None:
    """This data's threshold for ``far``, or None where it has too few impostor pairs for it."""
    if scores.impostor_total * float(far) < 1:
        return None
    return threshold_at_far(scores.impostor_desc, scores.impostor_total, float(far))


def person_folds(labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Fold number of each photo: people are dealt to folds at random, all of a person's photos together."""
    people = np.unique(labels)
    order = np.random.default_rng(seed).permutation(people.size)
    fold_of_person = dict(zip(people[order].tolist(), (np.arange(people.size) % folds).tolist(), strict=True))
    return np.array([fold_of_person[int(label)] for label in labels], np.int64)


def restricted(excluded: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Excluded index pairs renumbered into the photos ``keep`` selects (pairs leaving it dropped)."""
    new_index = np.cumsum(keep) - 1
    inside = keep[excluded[:, 0]] & keep[excluded[:, 1]] if excluded.size else np.zeros(0, bool)
    return new_index[excluded[inside]] if excluded.size else excluded


@dataclass
class CrossValidated:
    """Rates at thresholds set on the other folds' people, summed over the folds."""

    folds: int
    far: dict[str, Rate]
    tar: dict[str, Rate]


def cross_validate(
    left: np.ndarray,
    right: np.ndarray,
    labels: np.ndarray,
    *,
    symmetric: bool,
    excluded: np.ndarray,
    folds: int = 5,
    fars: tuple[str, ...] = CALIBRATED_FARS,
) -> CrossValidated:
    """Per fold: thresholds from the impostor pairs among the other folds' people, then FAR on the
    impostor pairs among this fold's people and TAR on this fold's genuine pairs."""
    fold = person_folds(labels, folds)
    far = {key: Rate(0, 0) for key in fars}
    tar = {key: Rate(0, 0) for key in fars}
    for index in range(folds):
        scored: dict[bool, PairScores] = {}
        for is_test in (False, True):
            keep = (fold == index) == is_test
            scored[is_test] = pair_scores(
                left[keep], right[keep], labels[keep], symmetric=symmetric, excluded=restricted(excluded, keep)
            )
        for key in fars:
            threshold = own_threshold(scored[False], key)
            if threshold is None:
                continue
            far[key] += far_at(scored[True], threshold)
            tar[key] += tar_at(scored[True], threshold)
    return CrossValidated(folds, far, tar)


def format_rate(rate: Rate) -> str:
    low, high = rate.interval
    behind = f", {rate.sources} person pairs" if rate.sources is not None else ""
    return f"{rate.value:.2e} [{low:.1e}, {high:.1e}] ({rate.count}/{rate.total}{behind})"
