"""ArcFace-style recognizers: aligned square crops in, L2-normalised embeddings out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.engine.runtime import Network


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
    """An ONNX recognizer graph on any runtime."""

    def __init__(self, network: Network, prep: RecognizerPreprocessing) -> None:
        self._network = network
        self.prep = prep
        self.input_size = prep.input_size

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        output = self._network.run(recognizer_blob(aligned_bgr, self.prep))[0]
        return l2_normalise(output.reshape(len(aligned_bgr), -1))
