"""Long jobs say how far they are (done/total, percent, rate, ETA) on stderr, and check what they
need before the work."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.tools.progress import note, progress, stage
from tests.helpers.server import REPO


def test_a_bar_counts_items_with_percent_rate_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress(range(40), "embedding", "photo")) == list(range(40))
    with stage("scoring", "pair", total=10) as shown:
        shown.update(10)
    note("wrote out/exclusions.txt")
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays for the results
    last = captured.err.replace("\r", "\n").splitlines()
    embedding = [line for line in last if line.startswith("embedding:")][-1]
    assert re.match(r"embedding: 100% .* 40/40 photo \[\d\d:\d\d<\d\d:\d\d, .+ photo/s\]", embedding), embedding
    assert any(line.startswith("scoring: 100%") and "10/10 pair" in line for line in last)
    assert last[-1] == "wrote out/exclusions.txt"


def test_evaluate_plot_without_matplotlib_stops_before_the_work(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['matplotlib'] = None\n"  # as on an install without the eval extra
        "from app.cli import main\n"
        f"sys.exit(main(['evaluate', {str(tmp_path / 'no-such-folder')!r}, '--plot', 'det.png']))\n"
    )
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == "comparefaces evaluate: --plot needs matplotlib: pip install 'comparefaces[eval]'"
    assert time.monotonic() - started < 30  # no model loaded, no photo read
