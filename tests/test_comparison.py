"""The comparison service's concurrency, with a stand-in engine (no model files): the pool, the
timeout, dropping queued work, the detection helper, closing."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

import pytest

from app.comparison import ComparisonService, DetectionHelper
from app.engine.engine import FaceEngine
from app.errors import ServiceUnavailable


class StandInEngine:
    model_id = "stand-in"
    calibration: Any = None
    stage_timer = None

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Observer:
    def __init__(self) -> None:
        self.queued = 0
        self.stages: list[str] = []

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stages.append(stage)

    def queued_changed(self, delta: int) -> None:
        self.queued += delta


def service(workers: int, timeout_s: float | None, observer: Observer | None = None) -> ComparisonService:
    return ComparisonService(cast(FaceEngine, StandInEngine()), workers=workers, timeout_s=timeout_s, observer=observer)


def test_jobs_run_on_pool_threads_and_report_their_queue_time() -> None:
    observer = Observer()
    comparisons = service(2, 5.0, observer)
    names = asyncio.run(comparisons.run(lambda _: threading.current_thread().name))
    comparisons.close()
    assert names.startswith("inference")
    assert observer.stages == ["queue"] and observer.queued == 0


def test_a_job_past_the_timeout_is_answered_service_unavailable_and_queued_work_is_dropped() -> None:
    observer = Observer()
    comparisons = service(1, 0.2, observer)
    release = threading.Event()
    ran: list[str] = []

    def queued_job(_: FaceEngine) -> None:
        ran.append("queued")

    async def scenario() -> list[object]:
        stuck = comparisons.run(lambda _: release.wait(5))
        queued = comparisons.run(queued_job)
        return list(await asyncio.gather(stuck, queued, return_exceptions=True))

    outcomes = asyncio.run(scenario())
    release.set()
    comparisons.close()
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes)
    assert ran == []  # the queued job never started: its request had given up
    assert observer.queued == 0


def test_close_waits_for_running_work_and_closes_the_engine() -> None:
    comparisons = service(1, None)
    engine = cast(StandInEngine, comparisons.engine)
    assert asyncio.run(comparisons.run(lambda _: 42)) == 42
    comparisons.close()
    assert engine.closed


def test_helper_keeps_order_and_uses_its_thread_for_the_last_item() -> None:
    helper = DetectionHelper()
    threads = helper.map(lambda item: (item, threading.current_thread().name), [1, 2, 3])
    helper.close()
    assert [item for item, _ in threads] == [1, 2, 3]
    assert threads[-1][1].startswith("detection-helper")
    assert not threads[0][1].startswith("detection-helper")


@pytest.mark.parametrize("failing", [0, 1])
def test_helper_raises_either_items_error_and_stays_usable(failing: int) -> None:
    helper = DetectionHelper()

    def detect(item: int) -> int:
        if item == failing:
            raise ValueError(item)
        return item

    with pytest.raises(ValueError):
        helper.map(detect, [0, 1])
    assert helper.map(lambda item: item * 2, [1, 2]) == [2, 4]
    helper.close()


def test_a_busy_helper_is_not_waited_for() -> None:
    helper = DetectionHelper()
    release = threading.Event()
    entered = threading.Semaphore(0)

    def hold(_: int) -> None:
        entered.release()
        release.wait(5)

    outside = threading.Thread(target=helper.map, args=(hold, [0, 1]))
    outside.start()
    try:
        for _ in range(2):  # both items running: the outside caller's and the helper's
            assert entered.acquire(timeout=5)
        names = helper.map(lambda _: threading.current_thread().name, [0, 1])  # the helper is busy: all here
        assert all(name == threading.current_thread().name for name in names)
    finally:
        release.set()
        outside.join()
        helper.close()
