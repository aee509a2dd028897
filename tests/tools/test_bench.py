"""The benchmark harness (``bench/``, ``python -m bench``): it runs end to end (about a second of load at concurrency 1
against a real server it starts) and its report has the expected shape. No timing assertions."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import Settings
from bench.cli import build_parser, options_from_args
from bench.inputs import REPO_ROOT, default_data_dir
from bench.peer import peer_missing
from bench.report import MARK_END, MARK_START, TARGETS, render_markdown, render_side_by_side, update_benchmarks_file
from bench.run import BenchOptions, run_bench, run_packs
from bench.stages import STAGES
from bench.stats import percentile
from tests.helpers.images import SHARED, require_lfw

LEVEL_FIELDS = {
    "concurrency",
    "comparisons",
    "errors",
    "seconds",
    "per_s",
    "p50_ms",
    "p99_ms",
    "mean_ms",
    "server_cpu_ms_per_comparison",
    "server_cores_busy",
    "peak_rss_mb",
    "client_cpu_ms_per_comparison",
    "error_codes",
}


def number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_short_run_against_a_real_server_reports_every_section(tmp_path: Path) -> None:
    require_lfw()
    peer = peer_missing() is None
    options = BenchOptions(
        levels=(1,),
        duration_s=1.0,
        pair_count=3,
        peer=peer,
        peer_duration_s=0.5,
        peer_processes=1,
        stages=True,
        stage_duration_s=0.2,
        out_dir=tmp_path / "results",
    )
    report = run_bench(options, Settings())

    assert {"machine", "settings", "run", "server", "pairs", "levels", "saturation", "stages", "peer"} <= set(report)
    assert {"cpu", "cores_usable", "onnxruntime", "python"} <= set(report["machine"])
    assert report["settings"]["model"] == "default"
    assert report["server"]["started_by_bench"] and report["server"]["url"].startswith("http://127.0.0.1:")
    assert report["pairs"]["used"] >= 1

    [level] = report["levels"]
    assert set(level) == LEVEL_FIELDS
    assert level["concurrency"] == 1 and level["comparisons"] >= 1 and level["errors"] == 0
    for name in LEVEL_FIELDS - {"concurrency", "comparisons", "errors", "error_codes"}:
        assert number(level[name]), name
    assert level["peak_rss_mb"] > 0 and level["server_cpu_ms_per_comparison"] > 0
    assert report["saturation"] == {"concurrency": 1, "per_s": level["per_s"]}

    stages = report["stages"]
    assert set(stages["ms_per_comparison"]) == {*STAGES, "total"}
    assert all(number(v) and v > 0 for v in stages["ms_per_comparison"].values())  # the engine's timer reported
    assert stages["ms_per_comparison"]["total"] <= stages["pipeline_ms_per_comparison"] + 0.01  # parts of one call
    assert stages["comparisons"] >= 1 and number(stages["pipeline_ms_per_comparison"])

    if peer:
        assert report["peer"]["processes"] == 1 and report["peer"]["comparisons"] >= 1
        assert number(report["peer"]["per_s"]) and number(report["peer_ratio"]) and number(report["peer_cpu_ratio"])
    else:
        assert "skipped" in report["peer"] and report["peer_ratio"] is None and report["peer_cpu_ratio"] is None

    assert set(report["targets"]) == set(TARGETS)
    assert report["targets"]["c1_p50_ms"]["value"] == level["p50_ms"]

    saved = json.loads(Path(report["json_path"]).read_text())
    assert saved["levels"] == report["levels"]
    table = render_markdown(report)
    assert "| concurrency | comparisons/s | p50 ms | p99 ms |" in table and "\n| 1 | " in table


def test_packs_are_benched_one_after_another_and_shown_side_by_side(tmp_path: Path) -> None:
    require_lfw()
    options = BenchOptions(levels=(1,), duration_s=0.5, pair_count=2, peer=False, stages=False, out_dir=tmp_path)
    reports = run_packs(options, Settings(), ["sface-fast", "default"])
    assert [report["settings"]["model"] for report in reports] == ["sface-fast", "default"]
    assert all(report["levels"][0]["comparisons"] >= 1 and report["levels"][0]["errors"] == 0 for report in reports)
    table = render_side_by_side(reports)
    assert "| `sface-fast` | " in table and "| 1.00x |" in table and "| `default` | " in table


def test_models_option_lists_the_packs() -> None:
    from bench.cli import main

    with pytest.raises(SystemExit, match="not with --url"):
        main(["--models", "default,sface-fast", "--url", "http://127.0.0.1:9"])


def test_benchmarks_file_keeps_text_around_the_markers(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    update_benchmarks_file(path, "first\n")
    assert path.read_text() == f"{MARK_START}\nfirst\n{MARK_END}\n"
    path.write_text(f"# Title\n\n{MARK_START}\nold\n{MARK_END}\n\nHow to rerun.\n")
    update_benchmarks_file(path, "| new |\n")
    assert path.read_text() == f"# Title\n\n{MARK_START}\n| new |\n{MARK_END}\n\nHow to rerun.\n"


def test_command_line_options() -> None:
    args = build_parser().parse_args(
        ["--concurrency", "1,4", "--duration", "3", "--no-peer", "--url", "http://127.0.0.1:9"]
    )
    options = options_from_args(args)
    assert options.levels == (1, 4) and options.duration_s == 3 and not options.peer
    assert options.url == "http://127.0.0.1:9" and options.stages


def test_percentile_is_nearest_rank() -> None:
    assert math.isnan(percentile([], 50))
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0  # the lower middle value, not their mean
    assert percentile([1.0, 2.0], 99) == 2.0 and percentile([1.0, 2.0], 0) == 1.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == 99.0 and percentile(values, 99.5) == 100.0 and percentile(values, 100) == 100.0


def test_comparefaces_bench_hands_its_arguments_to_the_harness(capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    assert "usage: comparefaces bench" in capsys.readouterr().out


def test_serve_does_not_import_the_harness() -> None:
    code = (
        "import sys, app.cli, app.api.factory; app.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'bench'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert result.stdout.strip() == "[]"


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared")
def test_default_data_dir_is_the_shared_folder() -> None:
    assert default_data_dir() == SHARED / "data"
