"""``comparefaces evaluate DIR [--pairs FILE] [--plot FILE.png]``: how well a pack separates people."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.engine.calibration import CALIBRATED_FARS, Calibration, threshold_at_far
from app.engine.engine import FaceEngine
from app.engine.packs import engine_for, load_models
from app.engine.types import ImageType, pair_type
from app.settings import Settings
from app.tools.dataset import EmbeddedSet, PairScores, embed_directory, pair_scores


@dataclass
class PairTypeReport:
    genuine_pairs: int
    impostor_pairs: int
    tar_at_far: dict[str, float]  # TAR at this data's own thresholds
    shipped_far: dict[str, float]  # measured FAR at the shipped thresholds
    shipped_tar: dict[str, float]


@dataclass
class EvaluationReport:
    model_id: str
    photos: int
    people: int
    missed: int
    pair_types: dict[str, PairTypeReport] = field(default_factory=dict)
    pairs_accuracy: float | None = None  # 10-fold LFW protocol
    pairs_accuracy_shipped: float | None = None  # at the shipped FAR 1e-3 threshold
    pairs_used: int = 0
    pairs_skipped: int = 0


def report_for(scores: PairScores, shipped: dict[str, float]) -> PairTypeReport:
    own = {far: threshold_at_far(scores.impostor_top, scores.impostor_total, float(far)) for far in CALIBRATED_FARS}
    return PairTypeReport(
        genuine_pairs=int(scores.genuine.size),
        impostor_pairs=scores.impostor_total,
        tar_at_far={far: float((scores.genuine >= t).mean()) for far, t in own.items()},
        shipped_far={
            far: float((scores.impostor_top >= t).sum() / scores.impostor_total) for far, t in shipped.items()
        },
        shipped_tar={far: float((scores.genuine >= t).mean()) for far, t in shipped.items()},
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
    settings: Settings, root: Path, *, pairs_file: Path | None = None, plot: Path | None = None
) -> EvaluationReport:
    models = load_models(settings)
    engine = engine_for(models, settings)  # refuses an uncalibrated pack before the long embedding
    return evaluate_embeddings(engine, embed_directory(models, root), pairs_file=pairs_file, plot=plot)


def evaluate_embeddings(
    engine: FaceEngine, data: EmbeddedSet, *, pairs_file: Path | None = None, plot: Path | None = None
) -> EvaluationReport:
    """The report for photos already embedded by ``engine``'s models."""
    report = EvaluationReport(engine.model_id, len(data.photos), len(data.people), data.missed)
    calibration: Calibration = engine.calibration
    all_scores: dict[str, PairScores] = {}
    for name, (left, right, symmetric) in {
        pair_type(ImageType.FACE_PIC, ImageType.FACE_PIC): (data.face, data.face, True),
        pair_type(ImageType.FACE_PIC, ImageType.ID_PIC): (data.face, data.id_style, False),
    }.items():
        scores = pair_scores(left, right, data.labels, symmetric=symmetric)
        shipped = calibration.cosine_at_far.get(name, {})
        report.pair_types[name] = report_for(scores, shipped)
        all_scores[name] = scores
    if pairs_file is not None:
        listed_scores, same, skipped = pairs_scores(data, read_pairs(pairs_file))
        report.pairs_used, report.pairs_skipped = len(listed_scores), skipped
        if len(listed_scores):
            report.pairs_accuracy = ten_fold_accuracy(listed_scores, same)
            shipped_threshold = calibration.cosine_at_far["FacePic-FacePic"]["0.001"]
            report.pairs_accuracy_shipped = float(((listed_scores >= shipped_threshold) == same).mean())
    if plot is not None:
        plot_det(all_scores, plot, engine.model_id)
    return report


def plot_det(curves: dict[str, PairScores], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.5))
    for name, scores in curves.items():
        thresholds = scores.impostor_top[:: max(1, len(scores.impostor_top) // 400)]
        far = np.array([(scores.impostor_top >= t).sum() / scores.impostor_total for t in thresholds])
        frr = np.array([(scores.genuine < t).mean() for t in thresholds])
        axis.plot(far, frr, label=name)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("false accept rate")
    axis.set_ylabel("false reject rate")
    axis.set_title(f"DET: {title}")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def print_report(report: EvaluationReport) -> None:
    print(f"model {report.model_id}: {report.photos} photos of {report.people} people ({report.missed} without a face)")
    for name, entry in report.pair_types.items():
        print(f"{name}: {entry.genuine_pairs} genuine / {entry.impostor_pairs} impostor pairs")
        for far in entry.tar_at_far:
            shipped = ""
            if far in entry.shipped_far:
                shipped = f"  shipped threshold: FAR {entry.shipped_far[far]:.2e}, TAR {entry.shipped_tar[far]:.4f}"
            print(f"  FAR {far:>8}: TAR {entry.tar_at_far[far]:.4f}{shipped}")
    if report.pairs_accuracy is not None:
        print(
            f"pairs: {report.pairs_used} used, {report.pairs_skipped} skipped; 10-fold accuracy "
            f"{report.pairs_accuracy:.4f}; at the shipped FAR 1e-3 threshold {report.pairs_accuracy_shipped:.4f}"
        )
