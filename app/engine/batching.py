"""Micro-batching across requests: the crops of concurrent comparisons go to the recognizer in one
call. On a GPU a call of 16 crops costs little more than a call of 2, so throughput grows with the
batch; on a CPU it buys nothing (cost is per crop) and the window only adds latency, so it is off
unless ``COMPAREFACES_RECOGNIZER_BATCH_WINDOW_MS`` is set."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from app.engine.types import Recognizer


@dataclass
class _Job:
    crops: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    embeddings: np.ndarray | None = None
    error: BaseException | None = None


class MicroBatchingRecognizer:
    """Wraps a recognizer: a call waits until one batching thread has run it together with the calls
    that arrived within ``window_s`` of the first (at most ``max_batch`` crops in all)."""

    def __init__(self, inner: Recognizer, *, window_s: float, max_batch: int) -> None:
        self._inner = inner
        self.input_size = inner.input_size
        self.window_s = window_s
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="recognizer-batcher", daemon=True)
        self._thread.start()

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        job = _Job(aligned_bgr)
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.embeddings is not None
        return job.embeddings

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """``first`` and the jobs that follow it within the window; True once close() was asked."""
        jobs, crops = [first], len(first.crops)
        deadline = time.monotonic() + self.window_s
        while crops < self.max_batch:
            try:
                job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            crops += len(job.crops)
        return jobs, False

    def _serve(self) -> None:
        closing = False
        while not closing:
            first = self._jobs.get()
            if first is None:
                return
            jobs, closing = self._gather(first)
            try:
                embeddings = self._inner.embed(np.concatenate([job.crops for job in jobs]))
                offsets = np.cumsum([len(job.crops) for job in jobs])[:-1]
                for job, part in zip(jobs, np.split(embeddings, offsets), strict=True):
                    job.embeddings = part
            except BaseException as exc:  # handed to every caller of the batch
                for job in jobs:
                    job.error = exc
            finally:
                for job in jobs:
                    job.done.set()
