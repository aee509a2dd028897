"""Micro-batching: concurrent calls share recognizer calls and each gets exactly its own embeddings."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.engine.batching import MicroBatchingRecognizer
from app.engine.onnx_convert import converted_copy
from app.engine.packs.embedded import DEFAULT_RECOGNIZER, SFACE_PREPROCESSING, embedded_model_dir
from app.engine.recognizer import OnnxRecognizer
from app.engine.runtime import onnxruntime_network
from app.settings import Settings


class MeanRecognizer:
    """Embeds a crop as its mean pixel value, and records the batch sizes it was called with."""

    input_size = 4

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[int] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        with self.lock:
            self.batches.append(len(aligned_bgr))
        if self.fail_on is not None and (aligned_bgr == self.fail_on).any():
            raise RuntimeError("bad crop")
        return aligned_bgr.reshape(len(aligned_bgr), -1).mean(axis=1, keepdims=True).astype(np.float32)


def crops(value: int, count: int = 2) -> np.ndarray:
    return np.full((count, 4, 4, 3), value, dtype=np.uint8)


def test_concurrent_calls_are_gathered_and_answered_with_their_own_embeddings() -> None:
    inner = MeanRecognizer()
    batcher = MicroBatchingRecognizer(inner, window_s=0.05, max_batch=64)
    barrier = threading.Barrier(8)

    def call(value: int) -> np.ndarray:
        barrier.wait()
        return batcher.embed(crops(value))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    batcher.close()
    for value, embeddings in enumerate(results):
        assert embeddings.tolist() == [[value], [value]]
    assert sum(inner.batches) == 16 and len(inner.batches) < 8


def test_a_batch_never_exceeds_max_batch_crops() -> None:
    inner = MeanRecognizer()
    batcher = MicroBatchingRecognizer(inner, window_s=0.05, max_batch=4)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda value: batcher.embed(crops(value)), range(8)))
    batcher.close()
    assert max(inner.batches) <= 4 and sum(inner.batches) == 16


def test_a_failing_batch_raises_in_its_callers_and_the_batcher_goes_on() -> None:
    batcher = MicroBatchingRecognizer(MeanRecognizer(fail_on=7), window_s=0.0, max_batch=8)
    with pytest.raises(RuntimeError, match="bad crop"):
        batcher.embed(crops(7))
    assert batcher.embed(crops(3)).tolist() == [[3], [3]]
    batcher.close()


def test_batched_sface_embeddings_equal_direct_ones() -> None:
    model = converted_copy(embedded_model_dir() / DEFAULT_RECOGNIZER, Settings().cache_dir)
    direct = OnnxRecognizer(onnxruntime_network(model, "cpu", 1), SFACE_PREPROCESSING)
    batcher = MicroBatchingRecognizer(direct, window_s=0.02, max_batch=16)
    inputs = [np.random.default_rng(seed).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8) for seed in range(4)]
    with ThreadPoolExecutor(4) as pool:
        batched = list(pool.map(batcher.embed, inputs))
    batcher.close()
    for crop_pair, embeddings in zip(inputs, batched, strict=True):
        np.testing.assert_allclose(embeddings, direct.embed(crop_pair), atol=1e-5)
