"""The whole benchmark: start (or target) a server, load it level by level, time the engine's
stages, run the peer, check the targets; the report is a dict (and a JSON file)."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app.engine.runtime import usable_cores
from app.settings import Settings
from bench.inputs import default_data_dir, read_photo_pairs, request_body
from bench.load import drive, post_all
from bench.machine import bench_settings, machine_info
from bench.peer import peer_missing, run_peer
from bench.probe import ProcessProbe
from bench.report import check_targets
from bench.server import spawn_server, wait_until_answering
from bench.stages import time_stages

DEFAULT_LEVELS = (1, 2, 4, 8)


@dataclass
class BenchOptions:
    url: str | None = None
    pid: int | None = None
    levels: tuple[int, ...] = DEFAULT_LEVELS
    duration_s: float = 10.0
    pair_count: int = 64
    photos: Path | None = None
    pairs_file: Path | None = None
    peer: bool = True
    peer_duration_s: float = 20.0
    peer_processes: int = 0  # 0: one per core
    stages: bool = True
    stage_duration_s: float = 6.0
    out_dir: Path | None = Path("bench-results")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run_bench(options: BenchOptions, settings: Settings) -> dict[str, Any]:
    """The whole benchmark; returns the report (also written to ``options.out_dir`` when set)."""
    data = default_data_dir()
    photos = options.photos or data / "lfw-dev"
    pairs_file = options.pairs_file or data / "lfw-dev-pairs.txt"
    pairs = [(a.read_bytes(), b.read_bytes()) for a, b in read_photo_pairs(photos, pairs_file, options.pair_count)]
    bodies = [request_body(a, b) for a, b in pairs]
    levels = sorted(set(options.levels))
    report: dict[str, Any] = {
        "version": 1,
        "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(),
        "settings": bench_settings(settings),
        "run": {
            "url_given": options.url is not None,
            "levels": levels,
            "duration_s": options.duration_s,
            "peer_duration_s": options.peer_duration_s,
            "stage_duration_s": options.stage_duration_s,
            "photos": str(photos),
            "pairs_file": str(pairs_file),
            "client": "http.client, one thread and keep-alive connection per concurrent client, in this process",
        },
    }

    # unsigned requests: an empty value unsets the keys file
    env = {
        "COMPAREFACES_ACCESS_KEYS_FILE": "",
        "COMPAREFACES_LOG_LEVEL": "warning",
        "COMPAREFACES_MODEL": settings.model,
    }
    if max(levels) > settings.max_in_flight:
        env["COMPAREFACES_MAX_IN_FLIGHT"] = str(max(levels))
        report["settings"]["max_in_flight"] = max(levels)

    @contextmanager
    def server() -> Iterator[tuple[str, int | None]]:
        if options.url:
            url = options.url.rstrip("/")
            wait_until_answering(url, 30, path="/readyz")
            yield url, options.pid
        else:
            log("starting comparefaces serve on 127.0.0.1")
            with spawn_server(env, inherit_output=True, startup_timeout_s=180, ready_path="/readyz") as (url, process):
                yield url, process.pid

    started = time.perf_counter()
    with server() as (url, pid):
        probe = None
        if pid:
            try:
                probe = ProcessProbe(pid)
            except ImportError:
                log("psutil is not installed: no server CPU time or RSS (pip install psutil)")
        server_info: dict[str, Any] = {"url": url, "pid": pid, "started_by_bench": options.url is None}
        if options.url is None:
            server_info["startup_s"] = round(time.perf_counter() - started, 1)
        if probe:
            server_info["rss_when_ready_mb"] = round(probe.rss_mb(), 1)
            peak = probe.high_water_mark_mb()  # before any reset: start-up (model loading) included
            server_info["startup_peak_rss_mb"] = None if peak is None else round(peak, 1)
        log(f"warm-up: each of {len(bodies)} pairs once at concurrency {max(levels)}")
        outcome = post_all(url, bodies, max(levels))
        kept = [body for body, error in zip(bodies, outcome, strict=True) if error is None]
        kept_pairs = [pair for pair, error in zip(pairs, outcome, strict=True) if error is None]
        report["pairs"] = {
            "requested": options.pair_count,
            "used": len(kept),
            "left_out": dict(Counter(error for error in outcome if error is not None)),
        }
        if not kept:
            raise SystemExit(f"no pair was compared by {url}: {report['pairs']['left_out']}")
        report["levels"] = []
        for concurrency in levels:
            level = drive(url, kept, concurrency, options.duration_s, probe)
            log(
                f"concurrency {concurrency}: {level.per_s}/s, p50 {level.p50_ms} ms, p99 {level.p99_ms} ms, "
                f"server CPU {level.server_cpu_ms_per_comparison} ms/comparison, RSS {level.peak_rss_mb} MB"
            )
            report["levels"].append(asdict(level))
        if probe:
            server_info["rss_method"] = probe.rss_method
        report["server"] = server_info
    best = max(report["levels"], key=lambda level: level["per_s"])
    report["saturation"] = {"concurrency": best["concurrency"], "per_s": best["per_s"]}

    if options.stages:
        log("per-stage timing in-process")
        try:
            report["stages"] = time_stages(settings, kept_pairs, options.stage_duration_s)
        except Exception as exc:  # a changed engine API must not lose the HTTP results
            report["stages"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    else:
        report["stages"] = {"skipped": "--no-stages"}

    missing = peer_missing() if options.peer else "--no-peer"
    if missing:
        report["peer"] = {"skipped": missing}
        report["peer_ratio"] = report["peer_cpu_ratio"] = None
    else:
        processes = options.peer_processes or usable_cores()
        log(f"peer: face_recognition (dlib) in {processes} processes for {options.peer_duration_s:g} s")
        report["peer"] = run_peer(kept_pairs, options.peer_duration_s, processes)
        peer_rate = report["peer"]["per_s"]
        report["peer_ratio"] = round(best["per_s"] / peer_rate, 2) if peer_rate else None
        ours_cpu = best.get("server_cpu_ms_per_comparison")  # HTTP and base64 included, unlike the peer's
        report["peer_cpu_ratio"] = round(report["peer"]["cpu_ms_per_comparison"] / ours_cpu, 2) if ours_cpu else None
    report["targets"] = check_targets(report)

    if options.out_dir is not None:
        options.out_dir.mkdir(parents=True, exist_ok=True)
        stamp = report["started_at"].replace(":", "").replace("-", "")
        path = options.out_dir / f"bench-{stamp}.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        report["json_path"] = str(path)
    return report


def run_packs(options: BenchOptions, settings: Settings, models: list[str]) -> list[dict[str, Any]]:
    """``run_bench`` for each model pack in turn, with the same options and pairs (the peer, if
    asked, only with the first): their rows side by side say what each pack costs on this machine."""
    reports = []
    for index, model in enumerate(models):
        log(f"model pack {model} ({index + 1} of {len(models)})")
        pack_options = options if index == 0 else replace(options, peer=False)
        reports.append(run_bench(pack_options, settings.model_copy(update={"model": model})))
    return reports
