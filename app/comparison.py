"""The one owner of concurrency for face comparisons.

The API hands :class:`ComparisonService` a request's two images; the service runs decoding and
inference in its bounded pool (``COMPAREFACES_INFERENCE_WORKERS`` threads), gives the work
``COMPAREFACES_INFERENCE_TIMEOUT_S``, drops a work item still queued when its request gives up, lends
each pair a one-thread detection helper and owns the lifetime of the recognizer's micro-batching
thread. The engine itself is synchronous and starts no thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from app.engine.batching import MicroBatchingRecognizer
from app.engine.calibration import Calibration
from app.engine.engine import FaceEngine
from app.engine.runtime import usable_cores
from app.engine.types import Comparison, ImageType
from app.errors import ServiceUnavailable
from app.settings import Settings

In = TypeVar("In")
Out = TypeVar("Out")
Result = TypeVar("Result")
Service = TypeVar("Service", bound="ComparisonService")

EncodedImage = tuple[bytes, ImageType]


class QueueObserver(Protocol):
    """What the service reports (``app.metrics.Metrics`` is one): time spent waiting for a pool thread
    and the engine's stage times, and how many comparisons are waiting."""

    def observe_stage(self, stage: str, seconds: float) -> None: ...

    def queued_changed(self, delta: int) -> None: ...


class Comparisons(Protocol):
    """What the API needs of the comparison service; tests stand a small fake in for it."""

    model_id: str
    calibration: Calibration
    workers: int  # inference threads

    async def compare(self, source: EncodedImage, target: EncodedImage) -> Comparison: ...

    async def run(self, job: Callable[[FaceEngine], Result]) -> Result: ...

    def close(self) -> None: ...


class DetectionHelper:
    """One spare thread: a pair's last image is detected on it while the caller detects the first,
    so a lone request uses two cores. Under load the helper is usually busy and callers detect both
    images themselves (no queue builds up behind it)."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detection-helper")
        self._free = threading.Semaphore(1)

    def map(self, function: Callable[[In], Out], items: Sequence[In]) -> list[Out]:
        """``[function(item) for item in items]``, the last one on the helper thread when it is free."""
        if len(items) < 2 or not self._free.acquire(blocking=False):
            return [function(item) for item in items]
        try:
            last = self._thread.submit(function, items[-1])
            try:
                found = [function(item) for item in items[:-1]]
            finally:
                last_result = last.result()  # waited for (and its error raised) even if an earlier item failed
            return [*found, last_result]
        finally:
            self._free.release()

    def close(self) -> None:
        self._thread.shutdown(wait=True)


class ComparisonService:
    def __init__(
        self,
        engine: FaceEngine,
        *,
        workers: int,
        timeout_s: float | None = None,
        observer: QueueObserver | None = None,
    ) -> None:
        self.engine = engine
        self.model_id = engine.model_id
        self.calibration = engine.calibration
        self.workers = workers
        self.timeout_s = timeout_s
        self._observer = observer
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
        self._helper = DetectionHelper()
        if observer is not None:
            engine.stage_timer = observer.observe_stage

    @classmethod
    def start(
        cls: type[Service], engine: FaceEngine, settings: Settings, observer: QueueObserver | None = None
    ) -> Service:
        """The service ``settings`` describe, warmed up; with ``RECOGNIZER_BATCH_WINDOW_MS`` the
        recognizer's calls are micro-batched across requests by one thread the service closes."""
        if settings.recognizer_batch_window_ms > 0:
            engine.recognizer = MicroBatchingRecognizer(
                engine.recognizer,
                window_s=settings.recognizer_batch_window_ms / 1000,
                max_batch=settings.recognizer_max_batch,
            )
        engine.warm_up()
        return cls(
            engine,
            workers=settings.inference_workers or usable_cores(),
            timeout_s=settings.inference_timeout_s,
            observer=observer,
        )

    async def compare(self, source: EncodedImage, target: EncodedImage) -> Comparison:
        """Decode both images, embed their largest faces, compare: in the pool, within the timeout."""

        def comparison(engine: FaceEngine) -> Comparison:
            first, second = engine.embed_pair(*source, *target, map_images=self._helper.map)
            return engine.compare(first, second)

        return await self.run(comparison)

    async def run(self, job: Callable[[FaceEngine], Result]) -> Result:
        """``job(engine)`` on a pool thread. Waiting for a thread counts against the timeout: past it
        the caller gets ``ServiceUnavailable`` and the work item is dropped if it has not started. A
        thread that is really stuck stays busy but costs this one request; admission (the API's
        ``MAX_IN_FLIGHT``) bounds the work queued behind it."""
        queued_at = time.perf_counter()
        self._queued(1)

        def run_job() -> Result:
            self._queued(-1)
            if self._observer is not None:
                self._observer.observe_stage("queue", time.perf_counter() - queued_at)
            return job(self.engine)

        future = self._pool.submit(run_job)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except asyncio.TimeoutError as exc:
            raise ServiceUnavailable() from exc
        finally:
            if future.cancel():  # still queued: dropped, and no longer waiting
                self._queued(-1)

    def _queued(self, delta: int) -> None:
        if self._observer is not None:
            self._observer.queued_changed(delta)

    def close(self) -> None:
        """Let running work finish, then stop the pool, the helper and the batching thread."""
        self._pool.shutdown(wait=True)
        self._helper.close()
        self.engine.close()
