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
from app.errors import ApiError, ImageValuePatternError, InternalError
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
IMAGE_TYPES = {"facepic": "FacePic", "idpic": "IDPic"}
ONE_IN = {"0.0001": "10,000", "0.001": "1,000", "0.01": "100"}
PATTERN_ERROR_CAUSES = (
    "a value in no address form (base64://, http(s)://, oss://), bytes that are not a JPEG, PNG, BMP or "
    "WebP image, or an image over COMPAREFACES_MAX_IMAGE_PIXELS"
)

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
    reason: str | None = None  # why an image was refused (for the operator; never in the body)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXIT_CODES_HELP
    parser.add_argument("a", help="source image: a file, or an image value (base64://, http(s)://, oss://)")
    parser.add_argument("b", help="target image, as A")
    parser.add_argument(
        "--source-type", type=image_type, default="FacePic", help="SourceImageType: FacePic (default) or IDPic"
    )
    parser.add_argument(
        "--target-type", type=image_type, default="FacePic", help="TargetImageType: FacePic (default) or IDPic"
    )
    parser.add_argument("--format", choices=("json", "xml"), default="json", help="the body's format (default json)")
    parser.add_argument("--annotate", type=Path, default=None, help="draw every face, the compared one and the crops")
    parser.add_argument(
        "--match-far", choices=REPORTED_FARS, default=None, help="exit 1 unless the score reaches this FAR's threshold"
    )


def image_type(argument: str) -> str:
    """``FacePic`` or ``IDPic``, in any case; anything else is a usage error (exit 2), not a request."""
    try:
        return IMAGE_TYPES[argument.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"{argument!r} is no image type: FacePic or IDPic") from None


def verdict(score: float, thresholds: dict[str, str]) -> str:
    """The answer in one line for people: how many strangers score this high."""
    strict, middle, loose = (float(thresholds[far]) for far in REPORTED_FARS)
    if score >= strict:
        return (
            f"verdict: same person. Score {score:.2f} reaches {strict:.2f}: "
            f"fewer than 1 in {ONE_IN['0.0001']} strangers score this high"
        )
    if score >= middle:
        return (
            f"verdict: same person. Score {score:.2f} reaches {middle:.2f}: fewer than 1 in {ONE_IN['0.001']} "
            f"strangers score this high (1 in {ONE_IN['0.0001']} needs {strict:.2f})"
        )
    if score >= loose:
        return (
            f"verdict: unsure. Score {score:.2f} reaches only {loose:.2f}: up to 1 in {ONE_IN['0.01']} strangers "
            f"score this high (1 in {ONE_IN['0.001']} needs {middle:.2f})"
        )
    return (
        f"verdict: not the same person. Score {score:.2f} is below {loose:.2f}: "
        f"more than 1 in {ONE_IN['0.01']} strangers score this high"
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
    reason = None
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
        if isinstance(error, ImageValuePatternError):
            reason = error.reason or PATTERN_ERROR_CAUSES
    except Exception as error:  # as the server: an internal error, without the message (it may quote data)
        log.error("comparison failed: %s", type(error).__name__)
        response = error_response(InternalError(), request_id=request_id, xml=xml)
    finally:
        await loader.close()
    return Outcome(response.status_code, bytes(response.body), None, analysis, reason=reason)


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
    if outcome.data is not None:
        thresholds = json.loads(str(outcome.data["ConfidenceThresholds"]))
        print(verdict(float(str(outcome.data["SimilarityScore"])), thresholds), file=sys.stderr)
        if engine.calibration.strata:
            print(f"thresholds ({outcome.stratum or 'strictest'}): {explain(outcome.stratum)}", file=sys.stderr)
    if outcome.reason is not None:
        print(f"why: {outcome.reason}", file=sys.stderr)
    if args.annotate is not None:
        if outcome.analysis is None:
            print(f"comparefaces compare: {args.annotate} not written (an image did not load)", file=sys.stderr)
        elif not cv2.imwrite(str(args.annotate), annotate(outcome.analysis)):
            print(f"comparefaces compare: cannot write {args.annotate}", file=sys.stderr)
            return EXIT_USAGE
        else:
            print(f"wrote {args.annotate}", file=sys.stderr)
    return exit_code(outcome, args.match_far)
