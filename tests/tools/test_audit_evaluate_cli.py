"""audit, evaluate and calibrate from the command line on a few real East-Asian photos (default pack)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from tests.helpers.images import SHARED

ASIAN = SHARED / "data" / "asian-dev"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ASIAN.is_dir(), reason=f"needs ../shared/data/asian-dev at {ASIAN}"),
]


def population(root: Path, people: list[Path]) -> Path:
    root.mkdir(parents=True)
    for person in people:
        (root / person.name).symlink_to(person)
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two small populations: people with several photos, plus one-photo people as impostors."""
    folders = sorted(p for p in ASIAN.iterdir() if p.is_dir())
    several = [p for p in folders if len(list(p.glob("*.jpg"))) >= 3][:8]
    single = [p for p in folders if len(list(p.glob("*.jpg"))) == 1][:60]
    base = tmp_path_factory.mktemp("asian")  # ~50 photos each: > 1,000 impostor pairs, enough for FAR 1e-3
    return population(base / "a", several[:4] + single[:30]), population(base / "b", several[4:] + single[30:])


def test_audit_writes_exclusions_and_a_contact_sheet(photos: tuple[Path, Path], tmp_path: Path) -> None:
    assert main(["audit", str(photos[0]), "--out", str(tmp_path / "audit"), "--top", "5"]) == 0
    listing = (tmp_path / "audit" / "exclusions.txt").read_text()
    assert listing.startswith("# comparefaces audit")
    assert (tmp_path / "audit" / "contact-sheet.png").stat().st_size > 0


def test_evaluate_reports_groups_with_intervals_and_cross_validation(
    photos: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exclude = tmp_path / "exclude.txt"
    person = sorted(p.name for p in photos[0].iterdir())[0]
    exclude.write_text(f"{person}\n")
    plot = tmp_path / "det.png"
    args = ["evaluate", str(photos[0]), str(photos[1]), "--groups", "prefix", "--exclude", str(exclude)]
    assert main([*args, "--folds", "2", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "== a:" in out and "== b:" in out and "cross-validated (2 folds" in out
    assert "shipped FAR   0.001" in out and "[" in out and plot.stat().st_size > 0


def test_calibrate_records_every_population(photos: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "calibration.json"
    assert main(["calibrate", str(photos[0]), str(photos[1]), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    for entry in data["pair_types"].values():
        assert set(entry["populations"]) == {"a", "b"}
        assert entry["impostor_pairs"] == sum(p["impostor_pairs"] for p in entry["populations"].values())
        for far, cosine in entry["cosine_at_far"].items():
            assert cosine >= min(p["cosine_at_far"][far] for p in entry["populations"].values())
