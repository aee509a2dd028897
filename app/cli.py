"""``comparefaces``: serve, calibrate, evaluate, models, keys, compare, tls (and bench, from a source checkout)."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from app.settings import Settings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn
    from pydantic import SecretStr

    from app.api.factory import create_app
    from app.api.protocol import uvicorn_http_options
    from app.comparison import ComparisonService
    from app.engine.build import load_engine
    from app.engine.packs import ModelPackError
    from app.engine.runtime import ProviderUnavailableError
    from app.exposure import open_mode_refusal, plain_http_refusal, unknown_variables
    from app.logs import configure_logging

    updated = settings.model_copy(update={"host": args.host or settings.host, "port": args.port or settings.port})
    if updated.access_keys_file is None and not updated.oss_token_secret.get_secret_value():
        # Open mode is one development process: a random upload-token key is right, and says nothing.
        updated = updated.model_copy(update={"oss_token_secret": SecretStr(secrets.token_hex(32))})
    refusal = open_mode_refusal(updated) or plain_http_refusal(updated)
    if refusal:  # before anything else: an open or clear-text server must never be reachable by accident
        print(f"comparefaces: {refusal}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    unknown = unknown_variables(os.environ)
    if unknown:
        logging.getLogger("comparefaces").warning("ignored, no such setting: %s", ", ".join(unknown))
    from app.auth.keys import KeysFileError, load_keys
    from app.faults import FaultsConfigError, check_fault_settings
    from app.listeners import probes_only, serve, without_metrics
    from app.tls import TlsConfigError, server_tls, uvicorn_tls_options

    try:  # before binding the port, so that a pack, a keys file or a TLS pair that cannot serve says why in one line
        tls = server_tls(updated)
        check_fault_settings(updated)
        if updated.access_keys_file is not None:
            load_keys(updated.access_keys_file)
        engine = load_engine(updated)
    except (ModelPackError, ProviderUnavailableError, FaultsConfigError, KeysFileError, TlsConfigError) as error:
        print(f"comparefaces: {error}", file=sys.stderr)
        return 2
    if updated.demo == "on" or (updated.demo == "auto" and updated.access_keys_file is None):
        host = "127.0.0.1" if updated.host in ("0.0.0.0", "::", "") else updated.host
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if tls is not None else "http"
        logging.getLogger("comparefaces").info(
            "demo page: %s://%s:%d/demo (open it in a browser)", scheme, host, updated.port
        )
    app = create_app(updated, comparisons_factory=lambda _, metrics: ComparisonService.start(engine, updated, metrics))
    options: dict[str, Any] = {
        "host": updated.host,
        "access_log": False,  # our own access log records no query strings (they may carry images)
        "log_config": None,
        "timeout_graceful_shutdown": 30,
        **uvicorn_http_options(updated),  # heads as large as the request limits (images in the query)
    }
    api = uvicorn.Config(
        without_metrics(app) if updated.probe_port else app,
        port=updated.port,
        **options,
        **uvicorn_tls_options(tls),  # a context that re-reads the certificate and key on change
    )
    probes = uvicorn.Config(probes_only(app), port=updated.probe_port, lifespan="off", **options)
    if not serve(api, probes if updated.probe_port else None):
        return 3  # uvicorn logged why (the port is taken, say)
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from app.tools.calibrate import calibrate, print_summary

    roots = [Path(d) for d in args.dir]
    print_summary(
        calibrate(settings, roots, Path(args.out), args.description, exclusions=args.exclude, groups=args.groups)
    )
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from app.tools.evaluate import evaluate, print_report

    if args.plot is not None:  # before the work, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("comparefaces evaluate: --plot needs matplotlib: pip install 'comparefaces[eval]'", file=sys.stderr)
            return 2
    report = evaluate(
        settings,
        [Path(d) for d in args.dir],
        pairs_file=args.pairs,
        plot=args.plot,
        groups=args.groups,
        exclusions=args.exclude,
        folds=args.folds,
    )
    print_report(report)
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from app.tools.audit import audit, print_audit

    print_audit(audit(settings, Path(args.dir), args.out, top=args.top, exclusions=args.exclude), args.out)
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from app.tools.models import download, list_models

    if args.models_command == "download":
        return download(settings, args.name, sha256=args.sha256, force=args.force)
    print("\n".join(list_models(settings)))
    return 0


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from app.tools.keys import run_cli

    return run_cli(args, settings)


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from app.tools.compare import run_cli

    return run_cli(args, settings)


def cmd_tls(args: argparse.Namespace, settings: Settings) -> int:
    from app.tools.tls import run_cli

    return run_cli(args, settings)


def run_bench_harness(argv: list[str]) -> int:
    """``comparefaces bench ARGS`` = ``python -m bench ARGS``: the harness is a development package of
    the source checkout (``bench/``), not part of the installed product."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "bench" / "__init__.py").is_file() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))  # an editable install run from anywhere finds its checkout's harness
    try:
        from bench.cli import main as bench_main
    except ImportError:
        print(
            "comparefaces: the benchmark harness is not installed: it lives in the source checkout "
            "(run `python -m bench` from its root, after pip install -e '.[test,bench]')",
            file=sys.stderr,
        )
        return 2
    return bench_main(argv, prog="comparefaces bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="comparefaces", description="Self-hosted Cloudauth CompareFaces server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(run=cmd_serve)

    calibrate = commands.add_parser(
        "calibrate", help="measure score thresholds on DIR/<person>/<photos>; several DIRs: strictest per key"
    )
    calibrate.add_argument("dir", nargs="+", help="one folder per population")
    calibrate.add_argument("--exclude", type=Path, default=None, help="exclusion list (comparefaces audit writes one)")
    calibrate.add_argument(
        "--groups",
        action="append",
        default=[],
        help="each group a population too (repeatable): 'prefix', a CSV of path,group, CSV:COLUMN of a "
        "person,COLUMN table ({population} in the path: the population's folder), several joined by '+'",
    )
    calibrate.add_argument("--out", required=True)
    calibrate.add_argument("--description", default="")
    calibrate.set_defaults(run=cmd_calibrate)

    evaluate = commands.add_parser("evaluate", help="true FAR/TAR at the shipped thresholds, per group; DET plot")
    evaluate.add_argument("dir", nargs="+", help="one folder per population (no pair crosses two)")
    evaluate.add_argument(
        "--groups",
        action="append",
        default=[],
        help="groups reported beside the whole population (repeatable): 'prefix', a CSV of path,group, "
        "CSV:COLUMN of a person,COLUMN table ({population}: the population's folder), several joined by '+'",
    )
    evaluate.add_argument("--exclude", type=Path, default=None, help="exclusion list (comparefaces audit writes one)")
    evaluate.add_argument("--folds", type=int, default=0, help="also cross-validate thresholds over K folds of people")
    evaluate.add_argument("--pairs", type=Path, default=None, help="LFW pairs.txt-format file")
    evaluate.add_argument("--plot", type=Path, default=None, help="write a DET/ROC plot PNG here")
    evaluate.set_defaults(run=cmd_evaluate)

    audit = commands.add_parser("audit", help="pairs of DIR most likely mislabelled, with a contact sheet")
    audit.add_argument("dir")
    audit.add_argument("--out", type=Path, required=True, help="folder for exclusions.txt and contact-sheet.png")
    audit.add_argument("--top", type=int, default=40, help="list at most this many pairs of each kind")
    audit.add_argument("--exclude", type=Path, default=None, help="exclusions already decided")
    audit.set_defaults(run=cmd_audit)

    from app.tools.keys import add_arguments as add_keys_arguments

    keys = commands.add_parser("keys", help="manage the access keys file: create (or --sts), list, disable, ...")
    add_keys_arguments(keys)
    keys.set_defaults(run=cmd_keys)

    models = commands.add_parser("models", help="list model packs, or download an official insightface pack")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    models_commands.add_parser("list", help="packs in COMPAREFACES_MODELS_DIR and the default: files, calibration")
    download = models_commands.add_parser("download", help="fetch an insightface pack (non-commercial use only)")
    download.add_argument("name", help="buffalo_l, buffalo_m, buffalo_s, buffalo_sc or antelopev2")
    download.add_argument("--sha256", default=None, help="expected sha256 of NAME.zip; required to install")
    download.add_argument("--force", action="store_true", help="replace model files already in the folder")
    models.set_defaults(run=cmd_models)

    from app.tools.compare import add_arguments as add_compare_arguments

    one = commands.add_parser("compare", help="compare two images in-process; print what the API would answer")
    add_compare_arguments(one)
    one.set_defaults(run=cmd_compare)

    from app.tools.tls import add_arguments as add_tls_arguments

    tls = commands.add_parser("tls", help="init: a local development CA and server certificate for HTTPS")
    add_tls_arguments(tls)
    tls.set_defaults(run=cmd_tls)

    commands.add_parser(  # listed for --help; main() hands its arguments to the harness unparsed
        "bench", help="(source checkout) load a server over HTTP, time the stages, compare with dlib", add_help=False
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return run_bench_harness(argv[1:])
    args = build_parser().parse_args(argv)
    settings = Settings()
    if args.command != "serve":
        # compare is one quick answer: the models it loads are not news (COMPAREFACES_LOG_LEVEL=debug shows them)
        quiet = args.command == "compare" and settings.log_level.lower() != "debug"
        level = logging.WARNING if quiet else logging.getLevelName(settings.log_level.upper())
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return int(args.run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
