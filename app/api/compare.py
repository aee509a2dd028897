"""The CompareFaces action: validate, load both images, run the engine off the event loop."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.engine.engine import FaceEngine
from app.engine.types import Comparison, ImageType
from app.errors import FacePicNotGiven, ImageTypeEmpty, ImageTypeInvalid, ParamMissing, ServiceUnavailable
from app.images.addresses import parse_address
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


async def load_both(loader: ImageLoader, values: tuple[str, str]) -> tuple[bytes, bytes]:
    """Both images at once. Both addresses are checked before anything is fetched, and when one
    load fails the other is cancelled: no fetch outlives its request (and its admission slot)."""
    addresses = [parse_address(value) for value in values]
    tasks = [asyncio.ensure_future(loader.load(address)) for address in addresses]
    try:
        source, target = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return source, target


async def compare_faces(
    params: dict[str, str],
    engine: FaceEngine,
    loader: ImageLoader,
    executor: ThreadPoolExecutor,
    *,
    inference_timeout_s: float | None = None,
) -> dict[str, Any]:
    """Validate, load both images, then decode and embed them in the pool.

    Decoding and inference (waiting for a pool thread included) get ``inference_timeout_s``: past
    it the request is answered ``ServiceUnavailable`` and its work item is cancelled if it has not
    started. A thread that is really stuck stays busy, but costs this one request; the admission
    semaphore still bounds the work queued behind it.
    """
    source_type, target_type = parse_image_types(params)
    source, target = await load_both(loader, image_values(params))

    def run() -> Comparison:
        first, second = engine.embed_pair(source, source_type, target, target_type)
        return engine.compare(first, second)

    future = executor.submit(run)
    try:
        result = await asyncio.wait_for(asyncio.wrap_future(future), inference_timeout_s)
    except asyncio.TimeoutError as exc:
        raise ServiceUnavailable() from exc
    finally:
        future.cancel()  # no-op once running or done; drops the queued work item otherwise
    return comparison_data(result)
