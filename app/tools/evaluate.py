"""``comparefaces evaluate DIR [DIR ...]``: how well a pack separates people, and whether the shipped
thresholds hold on them: the true FAR at every shipped threshold (every impostor pair counted) with
its 95% interval, per population and per group, optionally with thresholds cross-validated by person."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.engine.build import engine_for
from app.engine.calibration import CALIBRATED_FARS, Calibration
from app.engine.packs import load_models
from app.settings import Settings
from app.tools.calibrate import stratum_scores
from app.tools.dataset import FACE_PAIRS, ID_PAIRS, EmbeddedSet, Exclusions, embed_directory, photo_groups
from app.tools.pairs import PairScores, pair_scores
from app.tools.rates import (
    CrossValidated,
    Rate,
    cross_validate,
    far_across,
    far_at,
    format_rate,
    own_threshold,
    restricted,
    tar_across,
    tar_at,
)


@dataclass
class ShippedKey:
    """One shipped threshold measured on this data."""

    far_key: str
    cosine: float
    far: Rate
    tar: Rate

    @property
    def flagged(self) -> bool:
        """The measured FAR is significantly above the rate the key promises."""
        return self.far.significantly_above(float(self.far_key))

    @property
    def ratio(self) -> float:
        return self.far.value / float(self.far_key)


@dataclass
class PairTypeReport:
    genuine_pairs: int
    impostor_pairs: int
    shipped: dict[str, ShippedKey]
    own_tar: dict[str, float]  # TAR at this data's own thresholds: tuned on the very people scored
    cross_validated: CrossValidated | None = None
    scores: PairScores | None = field(default=None, repr=False)
    strata: dict[str, PairTypeReport] = field(default_factory=dict)  # each stratum's pairs at its thresholds
    per_request: dict[str, ShippedKey] = field(default_factory=dict)  # every pair at its stratum's thresholds


@dataclass
class GroupReport:
    name: str
    photos: int
    people: int
    pair_types: dict[str, PairTypeReport] = field(default_factory=dict)


@dataclass
class EvaluationReport:
    model_id: str
    photos: int
    people: int
    missed: int
    excluded_photos: int = 0
    excluded_pairs: int = 0
    groups: dict[str, GroupReport] = field(default_factory=dict)
    pairs_accuracy: float | None = None  # 10-fold LFW protocol
    pairs_accuracy_shipped: float | None = None  # at the shipped FAR 1e-3 threshold
    pairs_used: int = 0
    pairs_skipped: int = 0

    def worst_group(self, kind: str, far_key: str = "0.001") -> tuple[str, str] | None:
        """(highest measured FAR at ``far_key``, lowest TAR there) among the groups with these pairs."""
        entries = [
            (name, group.pair_types[kind].shipped[far_key])
            for name, group in self.groups.items()
            if kind in group.pair_types and far_key in group.pair_types[kind].shipped
        ]
        if len(entries) < 2:
            return None
        by_far = max(entries, key=lambda entry: entry[1].far.value)[0]
        by_tar = min(entries, key=lambda entry: entry[1].tar.value)[0]
        return by_far, by_tar


def report_for(scores: PairScores, shipped: dict[str, float]) -> PairTypeReport:
    own = {far: own_threshold(scores, far) for far in CALIBRATED_FARS}
    return PairTypeReport(
        genuine_pairs=int(scores.genuine.size),
        impostor_pairs=scores.impostor_total,
        shipped={
            far: ShippedKey(far, cosine, far_at(scores, cosine), tar_at(scores, cosine))
            for far, cosine in shipped.items()
        },
        own_tar={
            far: float((scores.genuine >= t).mean()) for far, t in own.items() if t is not None and scores.genuine.size
        },
        scores=scores,
    )


def read_pairs(path: Path) -> list[tuple[str, int, str, int, bool]]:
    """LFW ``pairs.txt`` lines (``name i j`` same person, ``name1 i name2 j`` different); a header
    line with only counts is skipped."""
    pairs = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            pairs.append((parts[0], int(parts[1]), parts[0], int(parts[2]), True))
        elif len(parts) == 4:
            pairs.append((parts[0], int(parts[1]), parts[2], int(parts[3]), False))
    return pairs


def ten_fold_accuracy(scores: np.ndarray, same: np.ndarray) -> float:
    """LFW protocol: per fold, the threshold that is best on the other nine folds."""
    folds = np.array_split(np.arange(len(scores)), 10)
    candidates = np.unique(scores)
    correct = 0
    for fold in folds:
        train = np.setdiff1d(np.arange(len(scores)), fold)
        accuracy = [((scores[train] >= t) == same[train]).mean() for t in candidates]
        threshold = candidates[int(np.argmax(accuracy))]
        correct += int(((scores[fold] >= threshold) == same[fold]).sum())
    return correct / len(scores)


def pairs_scores(data: EmbeddedSet, pairs: list[tuple[str, int, str, int, bool]]) -> tuple[np.ndarray, np.ndarray, int]:
    index = {(path.parent.name, path.stem): i for i, path in enumerate(data.photos)}
    scores, same, skipped = [], [], 0
    for name_a, a, name_b, b, is_same in pairs:
        ia, ib = index.get((name_a, f"{name_a}_{a:04d}")), index.get((name_b, f"{name_b}_{b:04d}"))
        if ia is None or ib is None:
            skipped += 1
            continue
        scores.append(float(data.face[ia] @ data.face[ib]))
        same.append(is_same)
    return np.asarray(scores), np.asarray(same), skipped


def evaluate(
    settings: Settings,
    roots: list[Path],
    *,
    pairs_file: Path | None = None,
    plot: Path | None = None,
    groups: Sequence[str] = (),
    exclusions: Path | None = None,
    folds: int = 0,
) -> EvaluationReport:
    models = load_models(settings)
    engine = engine_for(models, settings)  # refuses an uncalibrated pack before the long embedding
    populations = {root.name: embed_directory(models, root, settings=settings, ages=engine.ages) for root in roots}
    return evaluate_embeddings(
        engine.calibration,
        engine.model_id,
        populations,
        pairs_file=pairs_file,
        plot=plot,
        groups=groups,
        exclusions=Exclusions.read(exclusions) if exclusions else Exclusions(),
        folds=folds,
    )


def group_report(
    name: str, data: EmbeddedSet, excluded: np.ndarray, calibration: Calibration, folds: int
) -> GroupReport:
    report = GroupReport(name, len(data.photos), int(np.unique(data.labels).size))
    by_stratum = stratum_scores(data, excluded)
    for kind, (left, right, symmetric, _, _) in data.sides().items():
        scores = pair_scores(left, right, data.labels, symmetric=symmetric, excluded=excluded)
        entry = report_for(scores, calibration.cosine_at_far.get(kind, {}))
        if folds > 1:
            entry.cross_validated = cross_validate(
                left, right, data.labels, symmetric=symmetric, excluded=excluded, folds=folds
            )
        if kind in calibration.strata and kind in by_stratum:
            stratum_report(entry, by_stratum[kind], calibration.strata[kind])
        report.pair_types[kind] = entry
    return report


def stratum_report(entry: PairTypeReport, scores: dict[str, PairScores], shipped: dict[str, dict[str, float]]) -> None:
    """Each stratum's pairs at its own shipped thresholds, and all pairs at their stratum's (what
    requests meet: ConfidenceThresholds are the stratum's)."""
    entry.strata = {stratum: report_for(scores[stratum], shipped[stratum]) for stratum in shipped if stratum in scores}
    for far in CALIBRATED_FARS:
        parts = [(scores[stratum], table[far]) for stratum, table in shipped.items() if far in table]
        if parts:
            entry.per_request[far] = ShippedKey(far, float("nan"), far_across(parts), tar_across(parts))


def evaluate_embeddings(
    calibration: Calibration,
    model_id: str,
    populations: dict[str, EmbeddedSet] | EmbeddedSet,
    *,
    pairs_file: Path | None = None,
    plot: Path | None = None,
    groups: Sequence[str] = (),
    exclusions: Exclusions | None = None,
    folds: int = 0,
) -> EvaluationReport:
    """The report for photos already embedded by the calibrated models, one population per set (no pair
    crosses populations); each of ``groups`` splits each further (``photo_groups``): a group's impostor
    pairs are those within it (with a grouping by sex and population: the matched impostors)."""
    if isinstance(populations, EmbeddedSet):
        populations = {"photos": populations}
    exclusions = exclusions or Exclusions()
    report = EvaluationReport(
        model_id,
        sum(len(data.photos) for data in populations.values()),
        sum(len(data.people) for data in populations.values()),
        sum(data.missed for data in populations.values()),
    )
    for population, raw in populations.items():
        data, excluded = exclusions.apply(raw)
        report.excluded_photos += len(raw.photos) - len(data.photos)
        report.excluded_pairs += len(excluded)
        masks = {"": np.ones(len(data.photos), bool)}
        for spec in groups:
            grouped = photo_groups(data, spec, population)
            masks |= grouped if len(grouped) > 1 else {}
        for group, mask in masks.items():
            name = f"{population}:{group}" if group else population
            report.groups[name] = group_report(name, data.subset(mask), restricted(excluded, mask), calibration, folds)
    if pairs_file is not None:
        listed_scores, same, skipped = pairs_scores(next(iter(populations.values())), read_pairs(pairs_file))
        report.pairs_used, report.pairs_skipped = len(listed_scores), skipped
        if len(listed_scores):
            report.pairs_accuracy = ten_fold_accuracy(listed_scores, same)
            shipped_threshold = calibration.cosine_at_far[FACE_PAIRS]["0.001"]
            report.pairs_accuracy_shipped = float(((listed_scores >= shipped_threshold) == same).mean())
    if plot is not None:
        plot_det(report, plot)
    return report


def det_points(scores: PairScores, points: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, FRR) along the curve, FAR from one impostor pair up to all of them, log-spaced."""
    total = scores.impostor_total
    if total == 0 or scores.genuine.size == 0:
        return np.zeros(0), np.zeros(0)
    passed = np.unique(np.geomspace(1, total, points).astype(np.int64))
    thresholds = scores.impostor_desc[passed - 1]
    genuine = np.sort(scores.genuine)
    frr = np.searchsorted(genuine, thresholds, side="left") / genuine.size
    return passed / total, frr


def plot_det(report: EvaluationReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [FACE_PAIRS, ID_PAIRS]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for axis, kind in zip(axes, kinds, strict=True):
        for name, group in report.groups.items():
            entry = group.pair_types.get(kind)
            if entry is None or entry.scores is None:
                continue
            far, frr = det_points(entry.scores)
            (line,) = axis.plot(far, np.maximum(frr, 1e-4), label=name)
            for key in entry.shipped.values():  # where the shipped thresholds land on this group
                axis.plot(
                    max(key.far.value, 1 / max(1, entry.impostor_pairs)),
                    max(1 - key.tar.value, 1e-4),
                    "o",
                    color=line.get_color(),
                    markersize=4,
                )
        for far_key in ("0.01", "0.001", "0.0001"):
            axis.axvline(float(far_key), color="grey", linewidth=0.6, linestyle=":")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("false accept rate (dots: shipped thresholds)")
        axis.set_title(kind)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    axes[0].set_ylabel("false reject rate")
    figure.suptitle(f"DET per group: {report.model_id}")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def print_report(report: EvaluationReport) -> None:
    print(
        f"model {report.model_id}: {report.photos} photos of {report.people} people "
        f"({report.missed} without a face; {report.excluded_photos} photos and {report.excluded_pairs} pairs excluded)"
    )
    print("FAR: every impostor pair counted, [95% Wilson interval] (passed/pairs); '!' = significantly above the key")
    for name, group in report.groups.items():
        print(f"\n== {name}: {group.photos} photos, {group.people} people")
        for kind, entry in group.pair_types.items():
            print(f"{kind}: {entry.genuine_pairs} genuine / {entry.impostor_pairs} impostor pairs")
            print_keys(entry.shipped)
            for stratum, part in entry.strata.items():
                print(f"   stratum {stratum}: {part.genuine_pairs} genuine / {part.impostor_pairs} impostor pairs")
                print_keys(part.shipped, indent="     ")
            if entry.per_request:
                print("   every pair at its stratum's thresholds (what requests are answered with):")
                print_keys(entry.per_request, indent="     ")
            own = "  ".join(f"{far}: {tar:.4f}" for far, tar in entry.own_tar.items())
            print(f"   TAR at this data's own thresholds (tuned on these people): {own}")
            if entry.cross_validated is not None:
                cv = entry.cross_validated
                print(f"   cross-validated ({cv.folds} folds of people; thresholds set on the other folds):")
                for far_key in cv.far:
                    if cv.far[far_key].total:
                        print(
                            f"     FAR {far_key:>7}: measured FAR {format_rate(cv.far[far_key])}, "
                            f"TAR {cv.tar[far_key].value:.4f} ({cv.tar[far_key].count}/{cv.tar[far_key].total})"
                        )
    for kind in (FACE_PAIRS, ID_PAIRS):
        worst = report.worst_group(kind)
        if worst:
            print(f"\nworst group, {kind} at the shipped 1e-3 threshold: highest FAR {worst[0]}, lowest TAR {worst[1]}")
    stratified = any(entry.per_request for group in report.groups.values() for entry in group.pair_types.values())
    if len(report.groups) > 1 or stratified:
        print_side_by_side(report)
    if report.pairs_accuracy is not None:
        print(
            f"\npairs: {report.pairs_used} used, {report.pairs_skipped} skipped; 10-fold accuracy "
            f"{report.pairs_accuracy:.4f}; at the shipped FAR 1e-3 threshold {report.pairs_accuracy_shipped:.4f}"
        )


def print_keys(keys: dict[str, ShippedKey], indent: str = " ") -> None:
    for far_key, key in keys.items():
        flag = "!" if key.flagged else " "
        cosine = "" if np.isnan(key.cosine) else f" (cos {key.cosine:.4f})"
        low, high = key.tar.interval
        print(
            f"{indent}{flag} shipped FAR {far_key:>7}{cosine}: FAR {format_rate(key.far)} "
            f"= {key.ratio:.1f}x the key; TAR {key.tar.value:.4f} [{low:.4f}, {high:.4f}]"
        )


def print_side_by_side(report: EvaluationReport) -> None:
    """One line per group and pair type: FAR (x key) and TAR at each shipped threshold."""
    print("\ngroup | pairs | " + " | ".join(f"FAR@{k} (x key) TAR" for k in ("0.01", "0.001", "0.0001")))
    for name, group in report.groups.items():
        for kind, entry in group.pair_types.items():
            rows = {"": entry.shipped} | ({" per request": entry.per_request} if entry.per_request else {})
            for label, keys in rows.items():
                cells = [
                    f"{key.far.value:.1e} ({key.ratio:.1f}x{'!' if key.flagged else ''}) {key.tar.value:.3f}"
                    for far_key, key in keys.items()
                    if far_key in ("0.01", "0.001", "0.0001")
                ]
                print(f"{name} | {kind}{label} | " + " | ".join(cells))
