"""The CompareFaces action: validate, load both images, compare them in the comparison service."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from app.comparison import Comparisons
from app.images.loader import ImageLoader
from app.metrics import Metrics
from app.wire.compare_faces import comparison_data, image_values, parse_image_types


async def compare_faces(
    params: dict[str, str],
    comparisons: Comparisons,
    loader: ImageLoader,
    *,
    metrics: Metrics,
    compute_slot: Callable[[], AbstractAsyncContextManager[None]] = nullcontext,
) -> dict[str, Any]:
    """Validate, load both images, then compare them.

    ``compute_slot`` is held for decoding and inference only, not while the images are fetched: an
    image host that never answers holds its request, not a slot of the pool.
    """
    source_type, target_type = parse_image_types(params)
    started = time.perf_counter()
    source, target = await loader.load_pair(image_values(params))
    metrics.observe_stage("fetch", time.perf_counter() - started)
    async with compute_slot():
        result = await comparisons.compare((source, source_type), (target, target_type))
    return comparison_data(result)
