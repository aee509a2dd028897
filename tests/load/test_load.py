"""The load test (``bench/loadtest.py``) against a spawned server on loopback: saturation with a
mix of good and bad requests; no 5xx, no lost response, no unexpected answer, memory flat.

A short run is part of the default suite; ``pytest -m load`` holds the server at saturation for
three minutes (its report is printed: run with ``-s`` to see it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.server import REPO, log_file


def run_load(tmp_path: Path, *, duration: float, warmup: float, concurrency: int) -> dict[str, object]:
    report_path = tmp_path / "load.json"
    command = [
        sys.executable,
        "-m",
        "bench.loadtest",
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--concurrency",
        str(concurrency),
        "--max-in-flight",
        "6",
        "--json",
        str(report_path),
    ]
    server_log = log_file("load-server.log")
    if server_log is not None:
        command += ["--server-log", str(server_log)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + warmup + 240, cwd=REPO)
    print(result.stdout, result.stderr[-3000:])
    assert report_path.exists(), result.stderr[-3000:]
    report: dict[str, object] = json.loads(report_path.read_text())
    assert result.returncode == 0, report
    return report


def check(report: dict[str, object], *, max_rss_growth_mb: float) -> None:
    by_status = report["by_status"]
    assert isinstance(by_status, dict)
    assert report["server_errors_5xx"] == 0
    assert report["lost"] == 0
    assert report["unexpected"] == []
    assert report["server_alive_after"] is True
    assert by_status.get("200", 0) > 0, by_status
    assert by_status.get("429", 0) > 0, "never saturated: no Throttling.User seen"
    assert all(int(status) < 500 for status in by_status)
    rss = report["rss_mb"]
    assert isinstance(rss, dict)
    assert rss["after"] - rss["before"] < max_rss_growth_mb, rss


def test_short_load(tmp_path: Path) -> None:
    check(run_load(tmp_path, duration=12, warmup=3, concurrency=12), max_rss_growth_mb=120)


@pytest.mark.load
def test_sustained_load(tmp_path: Path) -> None:
    check(run_load(tmp_path, duration=180, warmup=20, concurrency=24), max_rss_growth_mb=60)
