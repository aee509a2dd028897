"""``comparefaces calibrate DIR [DIR ...] --out FILE``: measure cosine thresholds per FAR on real pairs.

Each DIR is a population (one folder of photos per person). Each population gets its own thresholds;
the calibration's threshold for a pair type and FAR key is the strictest of them (among populations
with enough impostor pairs to measure that key), so it holds for every population measured. Every
population's own thresholds, counts, and FAR (with its 95% interval) at the chosen thresholds are
recorded in the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from app.engine.build import age_estimator
from app.engine.calibration import (
    CALIBRATED_FARS,
    CALIBRATION_FORMAT,
    Calibration,
    CalibrationError,
    threshold_at_far,
)
from app.engine.packs import load_models
from app.engine.strata import STRATA, face_codes, stratum_codes
from app.settings import Settings
from app.tools.dataset import EmbeddedSet, Exclusions, embed_directory, photo_groups
from app.tools.pairs import PairScores, pair_scores
from app.tools.rates import far_at, restricted, tar_at

log = logging.getLogger(__name__)
# A threshold set where the impostor pairs that may pass come from fewer distinct pairs of people
# than this is too noisy to bind the others (pairs of the same two people are not independent).
MIN_PERSON_PAIRS_AT_KEY = 10
FALLBACK = "(strictest measured: too few pairs here)"
GROUP_MARK = ":"  # population:group
THRESHOLD_STEP = 1e-6  # thresholds are written to 6 decimals; a stricter key's is at least this much higher


def summarise(scores: PairScores) -> dict[str, Any]:
    """A population's own thresholds (where fewer than one impostor pair may pass: just above the
    highest impostor score; none without impostor pairs)."""
    if scores.impostor_total == 0:
        return {"genuine_pairs": int(scores.genuine.size), "impostor_pairs": 0, "cosine_at_far": {}, "tar_at_far": {}}
    cosine_at_far = {
        far: threshold_at_far(scores.impostor_desc, scores.impostor_total, float(far)) for far in CALIBRATED_FARS
    }
    return {
        "genuine_pairs": int(scores.genuine.size),
        "impostor_pairs": int(scores.impostor_total),
        "cosine_at_far": {far: round(value, 6) for far, value in cosine_at_far.items()},
        "tar_at_far": {
            far: round(float((scores.genuine >= value).mean()), 5) if scores.genuine.size else None
            for far, value in cosine_at_far.items()
        },
    }


def binds(scores: PairScores, far: str) -> bool:
    allowed = int(scores.impostor_total * float(far))
    return allowed >= MIN_PERSON_PAIRS_AT_KEY and scores.person_pairs_among_top(allowed) >= MIN_PERSON_PAIRS_AT_KEY


def combine(
    populations: dict[str, PairScores], fallback: dict[str, float] | None = None, *, rates: bool = True
) -> dict[str, Any]:
    """The strictest threshold per key over the populations that can measure it, with each population's
    own summary and (``rates``) its rates at the chosen thresholds. Where none can measure a key, the
    strictest of every population's own threshold for it (with a ``fallback``, a stratum's: of the
    whole populations', not their groups'), or ``fallback``'s where that is stricter;
    always above a looser key's (where the binding populations' own threshold is not, just above it:
    their FAR there is already within the key)."""
    own = {name: summarise(scores) for name, scores in populations.items()}
    chosen: dict[str, float] = {}
    decided_by: dict[str, str] = {}
    measured: dict[str, bool] = {}
    previous = -1.0
    for far in CALIBRATED_FARS:
        candidates = {name: own[name]["cosine_at_far"][far] for name in populations if own[name]["cosine_at_far"]}
        binding = [name for name, scores in populations.items() if binds(scores, far)]
        if not binding and fallback is not None:  # a stratum: a small group's noise does not outbid the measured
            candidates = {name: value for name, value in candidates.items() if GROUP_MARK not in name}
        value, decided_by[far] = -1.0, FALLBACK
        if candidates:
            name = max(binding or candidates, key=lambda n: candidates[n])
            value, decided_by[far] = candidates[name], name
        elif fallback is None:
            raise CalibrationError("no impostor pairs to calibrate on")
        if not binding and fallback is not None and fallback[far] > value:
            value, decided_by[far] = fallback[far], FALLBACK
        chosen[far] = round(max(value, previous + THRESHOLD_STEP), 6)
        measured[far] = bool(binding)
        previous = chosen[far]
    if rates:
        record_rates(own, populations, chosen)
    return {
        "genuine_pairs": sum(int(s.genuine.size) for s in populations.values()),
        "impostor_pairs": sum(s.impostor_total for s in populations.values()),
        "cosine_at_far": {far: round(value, 6) for far, value in chosen.items()},
        "decided_by": decided_by,
        "measured": measured,
        "populations": own,
    }


def record_rates(own: dict[str, Any], populations: dict[str, PairScores], chosen: dict[str, float]) -> None:
    """Each population's measured FAR and TAR at the chosen thresholds, into its summary."""
    for name, scores in populations.items():
        own[name]["at_chosen"] = {
            far: {"far": far_at(scores, t).as_dict(), "tar": tar_at(scores, t).as_dict()} for far, t in chosen.items()
        }


def stratified(pooled: dict[str, Any], populations: dict[str, dict[str, PairScores]]) -> dict[str, Any]:
    """Thresholds per stratum (``app.engine.strata``) from ``populations`` (name -> stratum -> pairs).
    A stratum too small to measure a key takes the strictest threshold measured for it (all pairs, or
    any stratum), never a looser one; and a younger stratum is never looser than an older one (where
    young-looking adults measure easier than adults, children do not: LFW's labelled children need a
    far stricter threshold than any adults, on too few pairs to bind it)."""
    first = {
        stratum: combine({name: s[stratum] for name, s in populations.items()}, rates=False)
        for stratum in STRATA
        if any(s[stratum].impostor_total for s in populations.values())
    }
    strictest = {
        far: max(
            [pooled["cosine_at_far"][far]]
            + [part["cosine_at_far"][far] for part in first.values() if part["measured"][far]]
        )
        for far in CALIBRATED_FARS
    }
    by_stratum = {stratum: {name: s[stratum] for name, s in populations.items()} for stratum in STRATA}
    parts = {stratum: combine(scores, strictest, rates=False) for stratum, scores in by_stratum.items()}
    for younger, older in zip(STRATA[-2::-1], STRATA[:0:-1], strict=True):  # young from adult, then child from young
        for far, cosine in parts[older]["cosine_at_far"].items():
            if cosine > parts[younger]["cosine_at_far"][far]:
                parts[younger]["cosine_at_far"][far] = cosine
                parts[younger]["decided_by"][far] = f"(as strict as {older})"
    for stratum, part in parts.items():
        record_rates(part["populations"], by_stratum[stratum], part["cosine_at_far"])
    return parts


def population_scores(kept: EmbeddedSet, excluded: np.ndarray) -> dict[str, PairScores]:
    return {
        kind: pair_scores(left, right, kept.labels, symmetric=symmetric, excluded=excluded)
        for kind, (left, right, symmetric, _, _) in kept.sides().items()
    }


def stratum_scores(kept: EmbeddedSet, excluded: np.ndarray) -> dict[str, dict[str, PairScores]]:
    """Pair type -> stratum -> the pairs in it; nothing where the photos' ages were not estimated."""
    if not kept.has_ages:
        return {}
    return {
        kind: {
            stratum: pair_scores(
                left, right, kept.labels, symmetric=symmetric, excluded=excluded, only=in_stratum(ages, code)
            )
            for code, stratum in enumerate(STRATA)
        }
        for kind, (left, right, symmetric, *ages) in kept.sides().items()
    }


def in_stratum(ages: list[np.ndarray], code: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    left, right = (face_codes(side) for side in ages)
    return lambda i, j: stratum_codes(left[i], right[j]) == code


def calibration_from_embeddings(
    populations: dict[str, EmbeddedSet] | EmbeddedSet,
    model: dict[str, Any],
    dataset: dict[str, Any],
    exclusions: Exclusions | None = None,
    groups: Sequence[str] = (),
) -> dict[str, Any]:
    """Each of ``groups`` (groupings, see ``photo_groups``) adds each group of a population as a
    population of its own (its impostor pairs: within the group, e.g. same sex and nationality: the
    impostors who look alike), so the thresholds hold for every group that can measure them."""
    if isinstance(populations, EmbeddedSet):
        populations = {str(dataset.get("path_name", "photos")): populations}
    scored: dict[str, dict[str, PairScores]] = {}
    by_stratum: dict[str, dict[str, dict[str, PairScores]]] = {}
    for name, data in populations.items():
        kept, excluded = (exclusions or Exclusions()).apply(data)
        parts = {name: (kept, excluded)}
        for spec in groups:
            masks = photo_groups(kept, spec, name)
            if len(masks) > 1:
                for group, mask in masks.items():
                    parts[f"{name}{GROUP_MARK}{group}"] = (kept.subset(mask), restricted(excluded, mask))
        for part, (photos, skipped) in parts.items():
            scored[part] = population_scores(photos, skipped)
            by_stratum[part] = stratum_scores(photos, skipped)
    kinds = [kind for kind in ("FacePic-FacePic", "FacePic-IDPic") if all(kind in s for s in scored.values())]
    pair_types = {kind: combine({name: s[kind] for name, s in scored.items()}) for kind in kinds}
    for kind, entry in pair_types.items():
        if all(kind in parts for parts in by_stratum.values()):
            entry["strata"] = stratified(entry, {name: parts[kind] for name, parts in by_stratum.items()})
    return {
        "format": CALIBRATION_FORMAT,
        "model": model,
        "dataset": dataset,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pair_types": pair_types,
        "notes": (
            "cosine_at_far[far]: the strictest of the populations' own thresholds (the cosine at or above "
            f"which that share of its impostor pairs scores; a population binds a key where the impostor pairs "
            f"that may pass come from at least {MIN_PERSON_PAIRS_AT_KEY} distinct pairs of people). "
            "populations[name].at_chosen: that population's measured FAR and TAR at the chosen thresholds: "
            "counts, 'sources' (distinct person pairs behind the false accepts; people behind the genuine "
            "pairs) and 95% intervals (the wider of Wilson's over pairs and a bootstrap over people). "
            "FacePic-IDPic pairs a photo with a 102x126 ID-chip-style portrait (plain light background, "
            "slightly soft, JPEG quality 25) made from another photo of the same (genuine) or another "
            "(impostor) person."
        ),
    }


def dataset_entry(name: str, data: EmbeddedSet, description: str) -> dict[str, Any]:
    return {
        "path_name": name,
        "description": description or f"{name}: one folder per person",
        "people": len(data.people),
        "photos": len(data.photos),
        "photos_without_face": data.missed,
    }


def calibrate(
    settings: Settings,
    roots: list[Path],
    out: Path,
    description: str = "",
    exclusions: Path | None = None,
    groups: Sequence[str] = (),
) -> dict[str, Any]:
    models = load_models(settings)
    ages = age_estimator(settings)
    populations = {root.name: embed_directory(models, root, settings=settings, ages=ages) for root in roots}
    excluded = Exclusions.read(exclusions) if exclusions else Exclusions()
    dataset = {
        "description": description or ", ".join(populations),
        "people": sum(len(d.people) for d in populations.values()),
        "photos": sum(len(d.photos) for d in populations.values()),
        "exclusions": {
            "file": exclusions.name if exclusions else "",
            "photos": len(excluded.photos),
            "pairs": len(excluded.pairs),
        },
        "populations": {name: dataset_entry(name, data, "") for name, data in populations.items()},
    }
    model = {
        "id": models.model_id,
        "sha256": models.file_sha256,
        "detection_max_side": settings.detection_max_side,
        "ages": ages.model_id,
    }
    if groups:
        dataset["groups"] = list(groups)
    result = calibration_from_embeddings(populations, model, dataset, excluded, groups)
    Calibration.from_dict(result)  # refuse to write what the server would refuse to load
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    log.info("wrote %s", out)
    return result


def print_summary(result: dict[str, Any]) -> None:
    for name, entry in result["pair_types"].items():
        print(f"{name}: {entry['genuine_pairs']} genuine, {entry['impostor_pairs']} impostor pairs")
        for far, cosine in entry["cosine_at_far"].items():
            print(f"  FAR {far:>8}: cosine >= {cosine:.4f} (strictest: {entry['decided_by'][far]})")
            for population, own in entry["populations"].items():
                at = own["at_chosen"][far]
                if at["far"]["rate"] is None:  # a group without impostor pairs (one person)
                    continue
                tar = "-" if at["tar"]["rate"] is None else f"{at['tar']['rate']:.4f}"
                print(
                    f"      {population}: FAR {at['far']['rate']:.2e} [{at['far']['low']:.1e}, {at['far']['high']:.1e}]"
                    f" ({at['far']['count']}/{at['far']['total']}, {at['far'].get('sources', '?')} person pairs),"
                    f" TAR {tar}"
                )
        for stratum, part in entry.get("strata", {}).items():
            cells = ", ".join(
                f"{far}: {cosine:.4f}{'' if part['measured'][far] else ' (strictest measured)'}"
                for far, cosine in part["cosine_at_far"].items()
            )
            print(f"  stratum {stratum}: {part['impostor_pairs']} impostor pairs; cosine {cells}")
