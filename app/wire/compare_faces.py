"""The CompareFaces action on the wire: its parameters as typed values, its result as response data."""

from __future__ import annotations

import json
from typing import Any

from app.engine.types import Comparison, ImageType, pair_type
from app.errors import ApiError, FacePicNotGiven, ImageTypeEmpty, ImageTypeInvalid, ParamMissing

NO_PAIR_TYPE = "-"  # the request had no valid pair of image types (logs and metrics)


def parse_image_types(params: dict[str, str]) -> tuple[ImageType, ImageType]:
    raw = (params.get("SourceImageType", ""), params.get("TargetImageType", ""))
    if not all(value.strip() for value in raw):
        raise ImageTypeEmpty()
    try:
        source, target = (ImageType(value.strip()) for value in raw)
    except ValueError as exc:
        raise ImageTypeInvalid() from exc
    if ImageType.FACE_PIC not in (source, target):
        raise FacePicNotGiven()
    return source, target


def requested_pair_type(params: dict[str, str]) -> str:
    """The pair type a request asks for, ``NO_PAIR_TYPE`` when its image types are not valid."""
    try:
        return pair_type(*parse_image_types(params))
    except ApiError:
        return NO_PAIR_TYPE


def image_values(params: dict[str, str]) -> tuple[str, str]:
    values = (params.get("SourceImageValue", "").strip(), params.get("TargetImageValue", "").strip())
    if not all(values):
        raise ParamMissing()
    return values


def comparison_data(result: Comparison) -> dict[str, Any]:
    thresholds = {far: f"{score:.2f}" for far, score in result.thresholds.items()}
    return {
        "SimilarityScore": round(result.score, 4),
        "ConfidenceThresholds": json.dumps(thresholds, separators=(",", ":")),
    }
