"""Targets, the Markdown summary, and BENCHMARKS.md between its markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.stages import STAGES

TARGETS = {  # the 2-core CPU machine with the embedded default model
    "c1_p50_ms": 25.0,  # concurrency 1, median latency per comparison, at most
    "saturation_per_s": 60.0,  # best comparisons/s over the levels, at least
    "peer_ratio": 8.0,  # ours / the peer's comparisons/s, at least
    "rss_mb": 400.0,  # server peak RSS during the load, at most
}
LOWER_IS_BETTER = ("c1_p50_ms", "rss_mb")
WORDING = {
    "c1_p50_ms": "p50 at concurrency 1, ms",
    "saturation_per_s": "comparisons/s at saturation",
    "peer_ratio": "ours / peer",
    "rss_mb": "server RSS under load, MB",
}
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"


def check_targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    levels = report["levels"]
    first = next((level for level in levels if level["concurrency"] == 1), None)
    rss = [level["peak_rss_mb"] for level in levels if level.get("peak_rss_mb") is not None]
    values = {
        "c1_p50_ms": first["p50_ms"] if first else None,
        "saturation_per_s": report["saturation"]["per_s"] if report.get("saturation") else None,
        "peer_ratio": report.get("peer_ratio"),
        "rss_mb": max(rss) if rss else None,
    }
    checks = {}
    for name, target in TARGETS.items():
        value = values[name]
        met = None if value is None else (value <= target if name in LOWER_IS_BETTER else value >= target)
        checks[name] = {"target": target, "value": value, "met": met}
    return checks


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(report: dict[str, Any]) -> str:
    m, s, run = report["machine"], report["settings"], report["run"]
    lines = [
        f"Run {report['started_at']} (git {m.get('git', '?')}): {m['cpu']}, {m['cores_usable']} cores usable, "
        f"onnxruntime {m['onnxruntime']}, OpenVINO {m.get('openvino', '-')}, Python {m['python']}; "
        "load average at start "
        f"{' / '.join(str(x) for x in m.get('load_average_at_start', []))}.",
        f"Server: model `{s['model']}` on `{s['execution_provider']}`, recognizer on {s['recognizer_backend']} "
        f"({s['recognizer_precision']}), intra_op_threads={s['intra_op_threads']}, "
        f"detector_threads={s['detector_threads']}, inference_workers={s['inference_workers']}, "
        f"batch window {s['recognizer_batch_window_ms']} ms, detection_max_side={s['detection_max_side']}"
        f"{' (settings of this shell; external server)' if run['url_given'] else ''}. "
        f"{report['pairs']['used']} LFW pairs (250x250 JPEG, base64 form bodies), {run['duration_s']:g} s per level.",
    ]
    load = m.get("load_average_at_start")
    if load and load[0] > 0.5 * m["cores_usable"]:
        lines.append(
            f"**The machine was busy** (load average {load[0]:g} on {m['cores_usable']} cores): "
            "these numbers are not comparable with a run on a quiet machine."
        )
    lines += [
        "",
        "| concurrency | comparisons/s | p50 ms | p99 ms | server CPU ms/comparison | server cores busy "
        "| server peak RSS MB | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in report["levels"]:
        lines.append(
            f"| {level['concurrency']} | {_fmt(level['per_s'])} | {_fmt(level['p50_ms'])} | {_fmt(level['p99_ms'])} "
            f"| {_fmt(level['server_cpu_ms_per_comparison'])} | {_fmt(level['server_cores_busy'], 2)} "
            f"| {_fmt(level['peak_rss_mb'], 0)} | {level['errors']} |"
        )
    peer = report["peer"]
    lines.append("")
    if "skipped" in peer:
        lines.append(f"Peer: skipped ({peer['skipped']}).")
    else:
        lines.append(
            f"Peer, {peer['implementation']}, {peer['processes']} processes (one per core), same pairs: "
            f"**{_fmt(peer['per_s'], 2)} comparisons/s**, p50 {_fmt(peer['p50_ms'])} ms, "
            f"CPU {_fmt(peer['cpu_ms_per_comparison'])} ms/comparison ({peer['no_face']} of {peer['comparisons']} "
            f"with no face found). **Ours / peer: {_fmt(report['peer_ratio'])}x** "
            f"(our best level against the peer on all cores)."
        )
        if report.get("peer_cpu_ratio"):
            lines.append(
                f"CPU time per comparison, less sensitive to a busy machine: the peer's is "
                f"{_fmt(report['peer_cpu_ratio'])}x our server's at that level (which includes HTTP and base64)."
            )
    stages = report["stages"]
    lines.append("")
    if "skipped" in stages:
        lines.append(f"Stages: skipped ({stages['skipped']}).")
    else:
        per_c, per_i = stages["ms_per_comparison"], stages["ms_per_image"]
        lines += [
            "In-process stages as the engine's stage timer reports them (one comparison at a time, same settings; "
            "detect is both images' wall time, the second on the detection helper thread):",
            "",
            "| stage | " + " | ".join(STAGES) + " | total | `embed_pair`+`compare` |",
            "|---|" + "---:|" * (len(STAGES) + 2),
            "| ms per comparison | "
            + " | ".join(_fmt(per_c[x], 2) for x in STAGES)
            + f" | {_fmt(per_c['total'], 2)} | {_fmt(stages['pipeline_ms_per_comparison'], 2)} |",
            "| ms per image | " + " | ".join(_fmt(per_i.get(x), 2) for x in STAGES) + " | | |",
        ]
    lines += ["", "| target | wanted | measured | met |", "|---|---:|---:|---|"]
    for name, check in report["targets"].items():
        sign = "<=" if name in LOWER_IS_BETTER else ">="
        met = {True: "yes", False: "**no**", None: "–"}[check["met"]]
        lines.append(f"| {WORDING[name]} | {sign} {check['target']:g} | {_fmt(check['value'])} | {met} |")
    return "\n".join(lines) + "\n"


def update_benchmarks_file(path: Path, markdown: str) -> None:
    """Replace the text between the bench markers of ``path`` (appended when there are none)."""
    block = f"{MARK_START}\n{markdown}{MARK_END}"
    text = path.read_text() if path.exists() else ""
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + block + "\n"
    path.write_text(text)


def render_side_by_side(reports: list[dict[str, Any]]) -> str:
    """One row per model pack of one ``--models`` run; CPU relative to the first pack's."""

    def cpu(report: dict[str, Any]) -> float | None:
        best = max(report["levels"], key=lambda level: level["per_s"])
        value = best.get("server_cpu_ms_per_comparison")
        return float(value) if value is not None else None

    base = cpu(reports[0])
    lines = [
        "Model packs side by side (same run, same pairs; server CPU at each pack's best level, relative to the "
        "first row):",
        "",
        "| model pack | comparisons/s | p50 ms at concurrency 1 | server CPU ms/comparison | CPU vs first "
        "| detect ms/comparison | embed ms/comparison |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        first = next((level for level in report["levels"] if level["concurrency"] == 1), None)
        stages = report["stages"].get("ms_per_comparison", {})
        mine = cpu(report)
        ratio = mine / base if mine is not None and base else None
        lines.append(
            f"| `{report['settings']['model']}` | {_fmt(report['saturation']['per_s'])} "
            f"| {_fmt(first['p50_ms'] if first else None)} | {_fmt(mine)} | {_fmt(ratio, 2)}x "
            f"| {_fmt(stages.get('detect'), 2)} | {_fmt(stages.get('embed'), 2)} |"
        )
    return "\n".join(lines) + "\n"
