"""``python -m bench`` (also ``comparefaces bench`` in a source checkout): throughput, latency, CPU and
memory of a CompareFaces server under load, the engine's stages, and the dlib peer.

1. Starts ``comparefaces serve`` on 127.0.0.1 (or targets ``--url``) and drives it over HTTP with
   base64 bodies of real photo pairs (LFW ``pairs.txt`` format) at several concurrency levels:
   comparisons/s, p50/p99 latency, server CPU time per comparison, server peak RSS.
2. Times the engine's stages in-process (decode, detect, align, embed, score) over the same photos,
   through the engine's own stage timer.
3. Runs the same pairs through the peer a Python user would otherwise pick, ``face_recognition``
   (dlib), in one process per core, and reports ours/peer comparisons/s.

Results go to ``bench-results/bench-<time>.json``; the summary is printed as Markdown (and written
into ``BENCHMARKS.md`` between its markers with ``--update-benchmarks``).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from app.settings import Settings
from bench.inputs import REPO_ROOT
from bench.report import render_markdown, render_side_by_side, update_benchmarks_file
from bench.run import DEFAULT_LEVELS, BenchOptions, run_bench, run_packs


def build_parser(prog: str = "python -m bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=None, help="target this running server instead of starting one")
    parser.add_argument("--pid", type=int, default=None, help="with --url: the server's process id (CPU, RSS)")
    parser.add_argument(
        "--concurrency",
        default=",".join(map(str, DEFAULT_LEVELS)),
        help="comma-separated concurrency levels (default: %(default)s)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level (default: %(default)s)")
    parser.add_argument("--pairs", type=int, default=64, help="photo pairs to cycle through (default: %(default)s)")
    parser.add_argument("--photos", type=Path, default=None, help="photo folder (default: ../shared/data/lfw-dev)")
    parser.add_argument(
        "--pairs-file",
        type=Path,
        default=None,
        help="pairs.txt-format file (default: ../shared/data/lfw-dev-pairs.txt)",
    )
    parser.add_argument(
        "--models",
        default=None,
        help="comma-separated model packs to bench one after the other, side by side (default: COMPAREFACES_MODEL)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the face_recognition (dlib) peer")
    parser.add_argument("--peer-duration", type=float, default=20.0, help="seconds for the peer (default: %(default)s)")
    parser.add_argument("--peer-processes", type=int, default=0, help="peer processes (default: one per core)")
    parser.add_argument("--no-stages", action="store_true", help="skip the in-process per-stage timing")
    parser.add_argument(
        "--stage-duration", type=float, default=6.0, help="seconds for the stage timing (default: %(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="JSON results folder (default: %(default)s)"
    )
    parser.add_argument(
        "--update-benchmarks",
        nargs="?",
        type=Path,
        const=REPO_ROOT / "BENCHMARKS.md",
        default=None,
        metavar="FILE",
        help="write the table into FILE between its bench markers (default FILE: BENCHMARKS.md)",
    )
    return parser


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    return BenchOptions(
        url=args.url,
        pid=args.pid,
        levels=tuple(int(x) for x in str(args.concurrency).split(",") if x.strip()),
        duration_s=args.duration,
        pair_count=args.pairs,
        photos=args.photos,
        pairs_file=args.pairs_file,
        peer=not args.no_peer,
        peer_duration_s=args.peer_duration,
        peer_processes=args.peer_processes,
        stages=not args.no_stages,
        stage_duration_s=args.stage_duration,
        out_dir=args.out,
    )


def main(argv: Sequence[str] | None = None, settings: Settings | None = None, prog: str = "python -m bench") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore"):  # one INFO line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = settings or Settings()
    models = [name.strip() for name in (args.models or "").split(",") if name.strip()]
    if len(models) > 1 and args.url:
        raise SystemExit("--models starts a server per pack: not with --url")
    reports = (
        run_packs(options_from_args(args), settings, models)
        if models
        else [run_bench(options_from_args(args), settings)]
    )
    report = reports[0]
    markdown = render_markdown(report)
    if len(reports) > 1:
        markdown += "\n" + render_side_by_side(reports)
    print(markdown)
    if args.update_benchmarks is not None:
        update_benchmarks_file(args.update_benchmarks, markdown)
        print(f"table written into {args.update_benchmarks}")
    for each in reports:
        if "json_path" in each:
            print(f"results: {each['json_path']}")
    return 0
