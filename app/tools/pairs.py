"""Scores of every pair of photos, and the people behind them.

Every genuine and every impostor cosine is kept (FAR is counted exactly at any threshold). Pairs of
photos of the same two people are not independent, so the people behind the pairs are kept too: each
genuine pair's person, and both people of the highest impostor pairs (``KEPT_IMPOSTORS`` or the top
``TOP_SHARE``, whichever is more: every pair of a set of up to ~2,000 photos). Rates are then resampled
by person (``app.tools.rates``) and a threshold is trusted only where enough distinct person pairs
stand behind it (``app.tools.calibrate``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

TOP_SHARE = 0.05
KEPT_IMPOSTORS = 2_000_000
BOOTSTRAP_REPLICATES = 400
BOOTSTRAP_SEED = 0


@dataclass
class PairScores:
    genuine: np.ndarray  # every genuine cosine
    impostor: np.ndarray  # every impostor cosine, sorted ascending (float32: 4 bytes a pair)
    genuine_people: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # person of each genuine pair
    top: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # highest impostor cosines, descending
    top_people: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # their two people, lower first
    photos_per_person: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # by person label
    impostors_between: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))  # (P, P) pair counts

    @property
    def impostor_total(self) -> int:
        return int(self.impostor.size)

    @property
    def impostor_desc(self) -> np.ndarray:
        return self.impostor[::-1]

    def impostors_at_or_above(self, threshold: float) -> int:
        """Exactly how many impostor pairs score >= ``threshold``."""
        return int(self.impostor.size - np.searchsorted(self.impostor, np.float32(threshold), side="left"))

    def genuine_at_or_above(self, threshold: float) -> int:
        return int((self.genuine >= np.float32(threshold)).sum())

    def knows_people_at(self, threshold: float) -> bool:
        """Whether the people of every impostor pair scoring >= ``threshold`` were kept."""
        return self.impostors_at_or_above(threshold) <= self.top.size

    def impostor_people_at_or_above(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """The distinct person pairs (U, 2) among the impostor pairs scoring >= ``threshold``, and how
        many photo pairs each contributes."""
        if not self.knows_people_at(threshold):
            raise ValueError(f"the people of impostor pairs below the kept {self.top.size} were not kept")
        passed = self.top_people[: self.impostors_at_or_above(threshold)]
        if not passed.size:
            return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
        pairs, counts = np.unique(passed, axis=0, return_counts=True)
        return pairs, counts

    def person_pairs_at_or_above(self, threshold: float) -> int:
        """How many distinct pairs of people the impostor pairs scoring >= ``threshold`` come from."""
        return len(self.impostor_people_at_or_above(threshold)[0])

    def person_pairs_among_top(self, count: int) -> int:
        """How many distinct pairs of people the ``count`` highest impostor pairs come from."""
        top = self.top_people[: min(count, self.top.size)]
        return len(np.unique(top, axis=0)) if top.size else 0

    @cached_property
    def bootstrap_weights(self) -> np.ndarray:
        """(B, P) how often each person is drawn in each of B resamples of the people (with replacement)."""
        present = np.flatnonzero(self.photos_per_person)  # labels are shared with other subsets
        weights = np.zeros((BOOTSTRAP_REPLICATES, self.photos_per_person.size), np.float64)
        if present.size == 0:
            return weights
        draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, present.size, (BOOTSTRAP_REPLICATES, present.size))
        offsets = (np.arange(BOOTSTRAP_REPLICATES) * present.size)[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=BOOTSTRAP_REPLICATES * present.size)
        weights[:, present] = counts.reshape(BOOTSTRAP_REPLICATES, present.size)
        return weights

    def resampled_counts(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(false accepts, impostor pairs) at ``threshold`` in each resample of the people: the pairs
        between people a and b, drawn w_a and w_b times, count w_a * w_b times."""
        weights = self.bootstrap_weights
        pairs, counts = self.impostor_people_at_or_above(threshold)
        passed = np.zeros(weights.shape[0])
        for start in range(0, len(pairs), 20_000):
            chunk = slice(start, start + 20_000)
            passed += (weights[:, pairs[chunk, 0]] * weights[:, pairs[chunk, 1]]) @ counts[chunk]
        return passed, ((weights @ self.impostors_between) * weights).sum(axis=1)

    def resampled_far(self, threshold: float) -> np.ndarray:
        passed, total = self.resampled_counts(threshold)
        return np.divide(passed, total, out=np.zeros_like(passed), where=total > 0)

    def resampled_genuine(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(genuine pairs passing, genuine pairs) at ``threshold`` in each resample of the people."""
        weights = self.bootstrap_weights
        people = self.photos_per_person.size
        pairs = np.bincount(self.genuine_people, minlength=people).astype(np.float64)
        passing = self.genuine_people[self.genuine >= np.float32(threshold)]
        return weights @ np.bincount(passing, minlength=people).astype(np.float64), weights @ pairs


def pair_scores(
    left: np.ndarray,
    right: np.ndarray,
    labels: np.ndarray,
    *,
    symmetric: bool,
    excluded: np.ndarray | None = None,
    only: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    chunk: int = 512,
) -> PairScores:
    """Cosines of every pair (i from left, j from right) with i != j (i < j when ``symmetric``),
    except the (i, j) index pairs in ``excluded`` (either order) and, with ``only``, the pairs for which
    ``only(i[:, None], j[None, :])`` is false: all genuine and all impostor ones, with their people.
    ``left`` and ``right`` are the same photos (``labels`` for both)."""
    n = len(left)
    people = int(labels.max()) + 1 if labels.size else 0
    columns = np.arange(len(right))
    dropped = np.zeros((0, 2), np.int64) if excluded is None else np.asarray(excluded, np.int64).reshape(-1, 2)
    dropped = np.concatenate([dropped, dropped[:, ::-1]])

    def blocks():  # (sims, valid & same, valid & ~same, rows) per block of rows
        for start in range(0, n, chunk):
            rows = np.arange(start, min(n, start + chunk))
            sims = left[rows] @ right.T
            valid = columns[None, :] > rows[:, None] if symmetric else columns[None, :] != rows[:, None]
            here = dropped[(dropped[:, 0] >= rows[0]) & (dropped[:, 0] <= rows[-1])]
            valid[here[:, 0] - start, here[:, 1]] = False
            if only is not None:
                valid &= only(rows[:, None], columns[None, :])
            same = labels[rows][:, None] == labels[None, :]
            yield sims, valid & same, valid & ~same, rows

    genuine: list[np.ndarray] = []
    genuine_people: list[np.ndarray] = []
    impostor: list[np.ndarray] = []
    between = np.zeros(people * people, np.int64)
    for sims, genuine_cells, impostor_cells, rows in blocks():
        genuine.append(sims[genuine_cells])
        genuine_people.append(np.broadcast_to(labels[rows][:, None], sims.shape)[genuine_cells])
        impostor.append(sims[impostor_cells].astype(np.float32))
        row, column = np.nonzero(impostor_cells)
        between += np.bincount(labels[rows[row]] * people + labels[column], minlength=people * people)
    everything = np.concatenate(impostor) if impostor else np.zeros(0, np.float32)
    everything.sort()

    kept = min(everything.size, max(KEPT_IMPOSTORS, int(np.ceil(TOP_SHARE * everything.size))))
    top = np.zeros(0, np.float32)
    top_people = np.zeros((0, 2), np.int64)
    if kept:  # a second pass: the people of every impostor pair at or above the kept floor
        floor = everything[everything.size - kept]
        scores, pair_people = [], []
        for sims, _, impostor_cells, rows in blocks():
            above = impostor_cells & (sims.astype(np.float32) >= floor)
            row, column = np.nonzero(above)
            scores.append(sims[row, column].astype(np.float32))
            pair_people.append(np.sort(np.stack([labels[rows[row]], labels[column]], axis=1), axis=1))
        top = np.concatenate(scores)
        order = np.argsort(-top, kind="stable")
        top, top_people = top[order], np.concatenate(pair_people)[order].astype(np.int64)
    return PairScores(
        genuine=np.concatenate(genuine) if genuine else np.zeros(0, np.float32),
        impostor=everything,
        genuine_people=np.concatenate(genuine_people).astype(np.int64) if genuine_people else np.zeros(0, np.int64),
        top=top,
        top_people=top_people,
        photos_per_person=np.bincount(labels, minlength=people),
        impostors_between=between.reshape(people, people).astype(np.int32),
    )
