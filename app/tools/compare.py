"""``comparefaces compare A B``: one comparison in-process, printed exactly as the API answers it.

The request goes through the API's own steps (parameter checks, image loading, engine, rendering),
so the body printed is the one ``POST /`` would return for these images; only the RequestId differs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2

from app.demo.analysis import Analysis, analyze, annotate
from app.engine.calibration import REPORTED_FARS
from app.engine.engine import FaceEngine
from app.engine.strata import explain
from app.errors import ApiError, InternalError
from app.images.http_fetch import UrlFetcher
from app.images.loader import ImageLoader
from app.images.object_store import create_object_store
from app.settings import Settings
from app.wire.compare_faces import comparison_data, image_values, parse_image_types
from app.wire.responses import error_response, success_response

log = logging.getLogger("comparefaces.compare")

EXIT_OK = 0  # the API answers success (and, with --match-far, the score reaches that threshold)
EXIT_NO_MATCH = 1  # --match-far given and the score is below that FAR's threshold
EXIT_USAGE = 2  # bad arguments, a file that cannot be read, a model pack that cannot serve
EXIT_REFUSED = 3  # the API answers a 4xx error for these images (no face, bad image, not found, ...)
EXIT_FAILED = 4  # the API answers a 5xx error
ADDRESS_PREFIXES = ("base64://", "http://", "https://", "oss://")

EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK}  the API answers success (with --match-far: and the score reaches that FAR's threshold)
  {EXIT_NO_MATCH}  --match-far given and the score is below that FAR's threshold
  {EXIT_USAGE}  usage error: bad arguments, unreadable file, model pack that cannot serve
  {EXIT_REFUSED}  the API answers a 4xx error (the error body is printed): Error.NoFaceDetected, ...
  {EXIT_FAILED}  the API answers a 5xx error (the error body is printed)"""


@dataclass(frozen=True)
class Outcome:
    status: int
    body: bytes
    data: dict[str, object] | None  # Data of a success
    analysis: Analysis | None  # when --annotate was asked and both images loaded
    stratum: str | None = None  # whose impostors the thresholds were measured on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXIT_CODES_HELP
    parser.add_argument("a", help="source image: a file, or an image value (base64://, http(s)://, oss://)")
    parser.add_argument("b", help="target image, as A")
    parser.add_argument("--source-type", default="FacePic", help="SourceImageType: FacePic (default) or IDPic")
    parser.add_argument("--target-type", default="FacePic", help="TargetImageType: FacePic (default) or IDPic")
    parser.add_argument("--format", choices=("json", "xml"), default="json", help="the body's format (default json)")
    parser.add_argument("--annotate", type=Path, default=None, help="draw every face, the compared one and the crops")
    parser.add_argument(
        "--match-far", choices=REPORTED_FARS, default=None, help="exit 1 unless the score reaches this FAR's threshold"
    )


def image_value(argument: str) -> str:
    """An image value as the API takes it: addresses as given, a file's bytes as ``base64://``."""
    if argument.startswith(ADDRESS_PREFIXES):
        return argument
    return "base64://" + base64.b64encode(Path(argument).read_bytes()).decode()


async def compare_once(params: dict[str, str], engine: FaceEngine, settings: Settings, *, inspect: bool) -> Outcome:
    """The API's CompareFaces steps, in its order, rendered by its own functions."""
    xml = params.get("Format", "").lower() == "xml"
    request_id = str(uuid.uuid4()).upper()
    loader = ImageLoader(UrlFetcher(settings), create_object_store(settings), settings.max_image_bytes)
    analysis = None
    try:
        source_type, target_type = parse_image_types(params)
        source, target = await loader.load_pair(image_values(params))
        if inspect:
            analysis = analyze(engine, source, source_type, target, target_type)
        first, second = engine.embed_pair(source, source_type, target, target_type)
        comparison = engine.compare(first, second)
        data = comparison_data(comparison)
        response = success_response("CompareFaces", data, request_id=request_id, xml=xml)
        return Outcome(response.status_code, bytes(response.body), data, analysis, comparison.stratum)
    except ApiError as error:
        response = error_response(error, request_id=request_id, xml=xml)
    except Exception as error:  # as the server: an internal error, without the message (it may quote data)
        log.error("comparison failed: %s", type(error).__name__)
        response = error_response(InternalError(), request_id=request_id, xml=xml)
    finally:
        await loader.close()
    return Outcome(response.status_code, bytes(response.body), None, analysis)


def exit_code(outcome: Outcome, match_far: str | None) -> int:
    if outcome.status >= 500:
        return EXIT_FAILED
    if outcome.status >= 400 or outcome.data is None:
        return EXIT_REFUSED
    if match_far is None:
        return EXIT_OK
    thresholds = json.loads(str(outcome.data["ConfidenceThresholds"]))
    score = float(str(outcome.data["SimilarityScore"]))
    return EXIT_OK if score >= float(thresholds[match_far]) else EXIT_NO_MATCH


def run_cli(args: argparse.Namespace, settings: Settings) -> int:
    from app.engine.build import load_engine
    from app.engine.packs import ModelPackError
    from app.engine.runtime import ProviderUnavailableError

    try:
        values = [image_value(argument) for argument in (args.a, args.b)]
    except OSError as error:
        print(f"comparefaces compare: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    params = {
        "SourceImageType": args.source_type,
        "SourceImageValue": values[0],
        "TargetImageType": args.target_type,
        "TargetImageValue": values[1],
        "Format": args.format.upper(),
    }
    try:
        engine = load_engine(settings)
    except (ModelPackError, ProviderUnavailableError) as error:
        print(f"comparefaces: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        outcome = asyncio.run(compare_once(params, engine, settings, inspect=args.annotate is not None))
    finally:
        engine.close()
    sys.stdout.write(outcome.body.decode("utf-8") + "\n")
    if outcome.data is not None and engine.calibration.strata:
        print(f"thresholds ({outcome.stratum or 'strictest'}): {explain(outcome.stratum)}", file=sys.stderr)
    if args.annotate is not None:
        if outcome.analysis is None:
            print(f"comparefaces compare: {args.annotate} not written (an image did not load)", file=sys.stderr)
        elif not cv2.imwrite(str(args.annotate), annotate(outcome.analysis)):
            print(f"comparefaces compare: cannot write {args.annotate}", file=sys.stderr)
            return EXIT_USAGE
    return exit_code(outcome, args.match_far)
