"""The CompareFaces action: validate, load both images, run the engine off the event loop."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.engine.engine import FaceEngine
from app.engine.types import Comparison, ImageType
from app.errors import FacePicNotGiven, ImageTypeEmpty, ImageTypeInvalid, ParamMissing
from app.images.loader import ImageLoader


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


async def compare_faces(
    params: dict[str, str], engine: FaceEngine, loader: ImageLoader, executor: ThreadPoolExecutor
) -> dict[str, Any]:
    source_type, target_type = parse_image_types(params)
    source_value, target_value = image_values(params)
    source, target = await asyncio.gather(loader.load(source_value), loader.load(target_value))
    loop = asyncio.get_running_loop()

    def run() -> Comparison:
        first, second = engine.embed_pair(source, source_type, target, target_type)
        return engine.compare(first, second)

    return comparison_data(await loop.run_in_executor(executor, run))
