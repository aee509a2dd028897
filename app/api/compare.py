"""The CompareFaces action: validate, load both images, run the engine off the event loop."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from app.engine.engine import FaceEngine
from app.engine.types import Comparison, ImageType, pair_type
from app.errors import ApiError, FacePicNotGiven, ImageTypeEmpty, ImageTypeInvalid, ParamMissing, ServiceUnavailable
from app.images.addresses import parse_address
from app.images.loader import ImageLoader
from app.metrics import NO_PAIR_TYPE, Metrics


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
    """The pair type a request asks for (for logs and metrics), ``-`` when its image types are not valid."""
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
    metrics: Metrics,
    compute_slot: Callable[[], AbstractAsyncContextManager[None]] = nullcontext,
) -> dict[str, Any]:
    """Validate, load both images, then decode and embed them in the pool.

    ``compute_slot`` is held for decoding and inference only, not while the images are fetched: an
    image host that never answers holds its request, not a slot of the pool.

    Decoding and inference (waiting for a pool thread included) get ``inference_timeout_s``: past
    it the request is answered ``ServiceUnavailable`` and its work item is cancelled if it has not
    started. A thread that is really stuck stays busy, but costs this one request; the admission
    semaphore still bounds the work queued behind it. ``metrics`` gets the fetch and queue times
    and the queued gauge (the engine's stage timer the rest).
    """
    source_type, target_type = parse_image_types(params)
    started = time.perf_counter()
    source, target = await load_both(loader, image_values(params))
    metrics.observe_stage("fetch", time.perf_counter() - started)

    async with compute_slot():
        return await _decode_and_embed(
            engine, executor, (source, source_type, target, target_type), inference_timeout_s, metrics
        )


async def _decode_and_embed(
    engine: FaceEngine,
    executor: ThreadPoolExecutor,
    pair: tuple[bytes, ImageType, bytes, ImageType],
    inference_timeout_s: float | None,
    metrics: Metrics,
) -> dict[str, Any]:
    source, source_type, target, target_type = pair
    queued_at = time.perf_counter()
    metrics.queued.inc()

    def run() -> Comparison:
        metrics.queued.dec()
        metrics.observe_stage("queue", time.perf_counter() - queued_at)
        first, second = engine.embed_pair(source, source_type, target, target_type)
        return engine.compare(first, second)

    future = executor.submit(run)
    try:
        result = await asyncio.wait_for(asyncio.wrap_future(future), inference_timeout_s)
    except asyncio.TimeoutError as exc:
        raise ServiceUnavailable() from exc
    finally:
        if future.cancel():  # drops the work item if still queued (no-op once running or done)
            metrics.queued.dec()
    return comparison_data(result)
