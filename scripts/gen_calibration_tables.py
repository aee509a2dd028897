#!/usr/bin/env python
"""Write the measured tables of ``docs/models-and-calibration.md`` from the shipped calibration files,
between the ``<!-- calibration tables -->`` markers: never typed by hand.

    python scripts/gen_calibration_tables.py          # rewrite the section (make docs)
    python scripts/gen_calibration_tables.py --check  # exit 1 if the section differs from the files

``tests/test_calibration_tables.py`` fails when they drift: after recalibrating, run this.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "models-and-calibration.md"
CALIBRATIONS = ROOT / "app" / "calibrations"
PACKS = ("default", "sface-reid")
BEGIN, END = "<!-- calibration tables -->", "<!-- end of calibration tables -->"
KEYS = ("0.01", "0.001", "0.0001")
SHOWN_IN_STRATA = ("lfw-dev", "asian-dev", "lab-dev:extyaleb")
SHOWN = (  # the populations and groups each table lists (the file holds every group)
    "lfw-dev",
    "lfw-dev:(no prefix)-F",
    "asian-dev",
    "asian-dev:korean",
    "asian-dev:korean-M",
    "asian-dev:japanese-F",
    "lab-dev",
    "lab-dev:extyaleb",
    "lab-dev:yale",
)


def far_cell(at: dict[str, Any], key: str) -> str:
    far = at["far"]
    ratio = far["rate"] / float(key) if far["rate"] is not None else float("nan")
    flag = "!" if far["low"] > float(key) else ""
    return f"{far['rate']:.1e} [{far['low']:.1e}, {far['high']:.1e}] {ratio:.1f}x{flag} ({far.get('sources', '?')})"


def tar_cell(at: dict[str, Any]) -> str:
    tar = at["tar"]
    return "-" if tar["rate"] is None else f"{100 * tar['rate']:.1f}%"


def rows(entry: dict[str, Any], label: str, shown: tuple[str, ...] = SHOWN) -> list[str]:
    lines = []
    for name in shown:
        population = entry["populations"].get(name)
        if population is None or "at_chosen" not in population or not population["impostor_pairs"]:
            continue
        at = population["at_chosen"]
        cells = [far_cell(at[key], key) for key in KEYS] + [tar_cell(at["0.001"]), tar_cell(at["0.0001"])]
        lines.append(f"| {label} | {name} | {population['impostor_pairs']:,} | " + " | ".join(cells) + " |")
    return lines


def tables() -> str:
    out = [
        "Generated from `app/calibrations/*.json` by `scripts/gen_calibration_tables.py`: measured on the people",
        "the thresholds were set on (the held-out checks are below). FAR: every impostor pair counted, [95%",
        "interval, the wider of Wilson's and a bootstrap over people], multiple of the key (`!`: the whole",
        "interval above it), (distinct person pairs behind the false accepts). `-F`/`-M`: matched impostors",
        "(same sex, and nationality where there is one).",
        "",
    ]
    for pack in PACKS:
        data = json.loads((CALIBRATIONS / f"{pack}.json").read_text())
        for kind, entry in data["pair_types"].items():
            cosines = ", ".join(f"{key}: {entry['cosine_at_far'][key]:.4f}" for key in KEYS)
            out += [
                f"**`{pack}`, {kind}** (model `{data['model']['id']}`; all pairs: cosine {cosines})",
                "",
                "| thresholds | population | impostor pairs | FAR at 1e-2 | FAR at 1e-3 | FAR at 1e-4 "
                "| TAR 1e-3 | TAR 1e-4 |",
                "|---|---|---:|---|---|---|---:|---:|",
                *rows(entry, "all pairs"),
            ]
            for stratum, part in entry.get("strata", {}).items():
                out += rows(part, f"{stratum} pairs", SHOWN_IN_STRATA)
            strata = entry.get("strata", {})
            if strata:
                out += ["", "| stratum | impostor pairs | " + " | ".join(f"cosine at {key}" for key in KEYS) + " |"]
                out += ["|---|---:|" + "---:|" * len(KEYS)]
                for stratum, part in strata.items():
                    cells = [
                        f"{part['cosine_at_far'][key]:.4f}{'' if part['measured'][key] else ' (strictest measured)'}"
                        for key in KEYS
                    ]
                    out.append(f"| {stratum} | {part['impostor_pairs']:,} | " + " | ".join(cells) + " |")
            out.append("")
    return "\n".join(out)


def rendered(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + tables() + "\n" + text[end:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = DOC.read_text()
    if args.check:
        return 0 if rendered(text) == text else 1
    DOC.write_text(rendered(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
