"""ArcFace-style recognizers: aligned square crops in, L2-normalised embeddings out."""

from __future__ import annotations

import queue
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort


@dataclass(frozen=True)
class RecognizerPreprocessing:
    input_size: int = 112
    rgb: bool = True
    mean: float = 127.5
    std: float = 127.5


def recognizer_blob(aligned_bgr: np.ndarray, prep: RecognizerPreprocessing) -> np.ndarray:
    """(N, S, S, 3) BGR uint8 -> (N, 3, S, S) float32 network input."""
    pixels = aligned_bgr[..., ::-1] if prep.rgb else aligned_bgr
    blob = (pixels.astype(np.float32) - prep.mean) / prep.std
    return np.ascontiguousarray(blob.transpose(0, 3, 1, 2))


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class OnnxRecognizer:
    def __init__(self, session: ort.InferenceSession, prep: RecognizerPreprocessing) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self.prep = prep
        self.input_size = prep.input_size

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        (output,) = self._session.run(None, {self._input: recognizer_blob(aligned_bgr, self.prep)})[:1]
        return l2_normalise(output.reshape(len(aligned_bgr), -1))


class OpenCvRecognizer:
    """The same ONNX network run by OpenCV's DNN module: for SFace on an AVX2 CPU it gives the same
    embeddings (cosine 0.9999999) 1.6x faster than onnxruntime. A ``cv2.dnn.Net`` must not run in two
    threads at once, so each call borrows a net from a pool that grows to the number of concurrent
    callers (the inference workers)."""

    def __init__(self, model_path: Path, prep: RecognizerPreprocessing) -> None:
        self._model_path = model_path
        self._idle: queue.SimpleQueue[cv2.dnn.Net] = queue.SimpleQueue()
        self._idle.put(self._load())
        self.prep = prep
        self.input_size = prep.input_size

    def _load(self) -> cv2.dnn.Net:
        return cv2.dnn.readNetFromONNX(str(self._model_path))

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        try:
            net = self._idle.get_nowait()
        except queue.Empty:
            net = self._load()
        try:
            net.setInput(recognizer_blob(aligned_bgr, self.prep))
            output = net.forward()
        finally:
            self._idle.put(net)
        return l2_normalise(output.reshape(len(aligned_bgr), -1))
