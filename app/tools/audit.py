"""``comparefaces audit DIR --out FOLDER``: the pairs most likely mislabelled in a folder of people.

Impostor pairs (two names) that score like one person, genuine pairs (one name) that score like
strangers. Writes ``exclusions.txt`` (suggested exclusion lines, to review and then pass to
``calibrate --exclude`` / ``evaluate --exclude``) and ``contact-sheet.png`` (each listed pair side by
side with its cosine) to look at before trusting the suggestions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from app.engine.build import engine_for
from app.engine.packs import load_models
from app.settings import Settings
from app.tools.dataset import EmbeddedSet, Exclusions, embed_directory, list_people
from app.tools.progress import note, progress

log = logging.getLogger(__name__)
THUMB = 112


@dataclass(frozen=True)
class SuspectPair:
    cosine: float
    first: str  # person/photo
    second: str
    labelled_same: bool


@dataclass
class AuditReport:
    photos: int
    people: int
    genuine_pairs: int
    impostor_pairs: int
    same_above: float  # impostor pairs at or above this cosine look like one person
    strangers_below: float  # genuine pairs below this cosine look like two people
    impostors_like_same: list[SuspectPair] = field(default_factory=list)
    genuine_like_strangers: list[SuspectPair] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)


def suspects(
    data: EmbeddedSet, excluded: np.ndarray, same_above: float, strangers_below: float, top: int
) -> AuditReport:
    """Every pair scored once (face photos); the ``top`` most suspicious of each kind past its bar."""
    sims = data.face @ data.face.T
    n = len(data.photos)
    upper = np.triu(np.ones((n, n), bool), 1)
    if excluded.size:
        upper[excluded[:, 0], excluded[:, 1]] = False
        upper[excluded[:, 1], excluded[:, 0]] = False
    same = data.labels[:, None] == data.labels[None, :]
    report = AuditReport(
        len(data.photos),
        int(np.unique(data.labels).size),
        int((upper & same).sum()),
        int((upper & ~same).sum()),
        same_above,
        strangers_below,
    )
    rows, cols = np.nonzero(upper & ~same & (sims >= same_above))
    for i in np.argsort(-sims[rows, cols])[:top]:
        a, b = int(rows[i]), int(cols[i])
        report.impostors_like_same.append(SuspectPair(float(sims[a, b]), data.key(a), data.key(b), False))
    rows, cols = np.nonzero(upper & same & (sims < strangers_below))
    for i in np.argsort(sims[rows, cols])[:top]:
        a, b = int(rows[i]), int(cols[i])
        report.genuine_like_strangers.append(SuspectPair(float(sims[a, b]), data.key(a), data.key(b), True))
    report.suggestions = suggestions(data, sims, report, strangers_below)
    return report


def suggestions(data: EmbeddedSet, sims: np.ndarray, report: AuditReport, strangers_below: float) -> list[str]:
    """Exclusion lines: two names that score as one person: every pair between them; a photo that
    scores like a stranger against most photos of its own person: that photo; else the pair."""
    lines: list[str] = []
    index = {data.key(i): i for i in range(len(data.photos))}
    people_pairs = sorted(
        {tuple(sorted((p.first.split("/")[0], p.second.split("/")[0]))) for p in report.impostors_like_same}
    )
    lines += [f"{a}\t{b}\t# scored as one person" for a, b in people_pairs]
    dropped: set[str] = set()
    for pair in report.genuine_like_strangers:
        if pair.first in dropped or pair.second in dropped:
            continue
        odd_one = None
        for key in (pair.first, pair.second):
            i = index[key]
            others = np.nonzero((data.labels == data.labels[i]) & (np.arange(len(data.photos)) != i))[0]
            if others.size >= 2 and np.median(sims[i, others]) < strangers_below:
                odd_one = key
                break
        if odd_one:
            dropped.add(odd_one)
            lines.append(f"{odd_one}\t# scores like a stranger against most photos of its person")
        else:
            lines.append(f"{pair.first}\t{pair.second}\t# one of these is probably someone else ({pair.cosine:.3f})")
    return lines


def thumbnail(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return np.full((THUMB, THUMB, 3), 128, np.uint8)
    scale = THUMB / max(image.shape[:2])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    tile = np.full((THUMB, THUMB, 3), 255, np.uint8)
    tile[: small.shape[0], : small.shape[1]] = small
    return tile


def contact_sheet(root: Path, pairs: list[SuspectPair], path: Path, columns: int = 4) -> None:
    """Each pair as two thumbnails with its cosine and names beneath; red border: labelled the same
    person, blue: labelled two people."""
    cell_w, cell_h = 2 * THUMB + 8, THUMB + 34
    rows = max(1, -(-len(pairs) // columns))
    sheet = np.full((rows * cell_h, columns * cell_w, 3), 255, np.uint8)
    for n, pair in enumerate(progress(pairs, "contact sheet", "pair")):
        x, y = (n % columns) * cell_w, (n // columns) * cell_h
        colour = (0, 0, 200) if pair.labelled_same else (200, 80, 0)
        cell = np.hstack([thumbnail(root / pair.first), thumbnail(root / pair.second)])
        sheet[y : y + THUMB, x : x + 2 * THUMB] = cell
        cv2.rectangle(sheet, (x, y), (x + 2 * THUMB - 1, y + THUMB - 1), colour, 2)
        label = "same name" if pair.labelled_same else "two names"
        cv2.putText(
            sheet, f"{pair.cosine:.3f} {label}", (x + 2, y + THUMB + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, colour, 1
        )
        names = f"{Path(pair.first).stem} | {Path(pair.second).stem}"[:40]
        cv2.putText(sheet, names, (x + 2, y + THUMB + 27), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1)
    cv2.imwrite(str(path), sheet)


def audit(settings: Settings, root: Path, out: Path, *, top: int = 40, exclusions: Path | None = None) -> AuditReport:
    models = load_models(settings)
    calibration = engine_for(models, settings).calibration
    face = calibration.cosine_at_far["FacePic-FacePic"]
    listing = list_people(root)
    note(f"audit: embedding {sum(len(files) for _, files in listing)} photos of {len(listing)} people in {root}")
    data = embed_directory(models, root, with_id_style=False, settings=settings)
    kept, excluded = (Exclusions.read(exclusions) if exclusions else Exclusions()).apply(data)
    note(f"audit: scoring every pair of {len(kept.photos)} photos")
    # Impostors past the shipped FAR 1e-5 threshold are 1 in 100,000 strangers; genuine pairs below
    # the FAR 1e-2 one score lower than 1 in 100 strangers do.
    report = suspects(kept, excluded, face.get("0.00001", face["0.0001"]), face["0.01"], top)
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(root, out, report)
    return report


def write_outputs(root: Path, out: Path, report: AuditReport) -> None:
    header = [
        "# comparefaces audit: suggested exclusions. Review them against contact-sheet.png, delete",
        "# the lines you disagree with, then pass this file to calibrate/evaluate --exclude.",
    ]
    (out / "exclusions.txt").write_text("\n".join(header + report.suggestions) + "\n")
    contact_sheet(root, report.genuine_like_strangers + report.impostors_like_same, out / "contact-sheet.png")
    log.info("wrote %s and %s", out / "exclusions.txt", out / "contact-sheet.png")


def print_audit(report: AuditReport, out: Path) -> None:
    print(
        f"{report.photos} photos of {report.people} people: {report.genuine_pairs} genuine, "
        f"{report.impostor_pairs} impostor pairs"
    )
    print(
        f"impostor pairs at or above cosine {report.same_above:.4f} (like one person): "
        f"{len(report.impostors_like_same)} listed"
    )
    for pair in report.impostors_like_same:
        print(f"  {pair.cosine:.4f}  {pair.first}  {pair.second}")
    print(
        f"genuine pairs below cosine {report.strangers_below:.4f} (like strangers): "
        f"{len(report.genuine_like_strangers)} listed"
    )
    for pair in report.genuine_like_strangers:
        print(f"  {pair.cosine:.4f}  {pair.first}  {pair.second}")
    print(f"suggested exclusions: {out / 'exclusions.txt'}; contact sheet: {out / 'contact-sheet.png'}")
