"""ArcFace-style recognizers and their variants (fixed-batch graphs, fusions): aligned square crops in,
L2-normalised embeddings out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from app.engine.runtime import Network
from app.engine.types import Recognizer


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


def graph_input_size(network: Network) -> int | None:
    shape = network.input_shape
    return shape[2] if len(shape) == 4 else None


class FixedBatchRecognizer(OnnxRecognizer):
    """For graphs exported with a fixed batch size (often 1): crops go in chunks of exactly that
    size, the last one zero-padded."""

    def __init__(self, network: Network, prep: RecognizerPreprocessing, batch: int) -> None:
        super().__init__(network, prep)
        self.batch = batch

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        one_batch = super().embed
        chunks = []
        for start in range(0, len(aligned_bgr), self.batch):
            chunk = aligned_bgr[start : start + self.batch]
            padding = np.zeros((self.batch - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
            chunks.append(one_batch(np.concatenate([chunk, padding]))[: len(chunk)])
        return np.concatenate(chunks)


def graph_normalisation(path: Path) -> dict[str, float]:
    """insightface's rule for ArcFace graphs: an MXNet export whose first nodes subtract and scale
    (``Sub``/``_minus`` and ``Mul``/``_mul``) takes raw pixels (mean 0, std 1); other graphs take
    (x - 127.5) / 127.5 (the defaults, returned as ``{}``)."""
    import onnx

    names = [node.name for node in onnx.load(str(path), load_external_data=False).graph.node[:8]]
    subtracts = any(name.startswith(("Sub", "_minus")) for name in names)
    scales = any(name.startswith(("Mul", "_mul")) for name in names)
    return {"mean": 0.0, "std": 1.0} if subtracts and scales else {}


def recognizer_for(
    network: Network, manifest_prep: dict[str, Any], graph_prep: dict[str, Any] | None = None
) -> OnnxRecognizer:
    """Preprocessing: the manifest's entries win, then what the graph says (input size, and
    ``graph_prep``), then ArcFace defaults (112, RGB, 127.5/127.5)."""
    prep = RecognizerPreprocessing(
        **{"input_size": graph_input_size(network) or 112, **(graph_prep or {}), **manifest_prep}
    )
    batch = network.input_shape[0]
    if batch is not None:
        return FixedBatchRecognizer(network, prep, batch)
    return OnnxRecognizer(network, prep)


@dataclass(frozen=True)
class CropRegion:
    """The part of the 112x112 ArcFace frame a recognizer was trained on, in that frame's pixels."""

    left: float = 0.0
    top: float = 0.0
    right: float = 112.0
    bottom: float = 112.0


def region_crops(aligned_bgr: np.ndarray, region: CropRegion, size: int) -> np.ndarray:
    """(N, S, S, 3) crops aligned on the ArcFace template at any S -> (N, size, size, 3), the region
    cut out and resized (area interpolation: S is chosen larger than every member's input)."""
    scale = aligned_bgr.shape[1] / 112.0
    x0, x1 = round(region.left * scale), round(region.right * scale)
    y0, y1 = round(region.top * scale), round(region.bottom * scale)
    return np.stack(
        [cv2.resize(crop[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA) for crop in aligned_bgr]
    )


@dataclass(frozen=True)
class FusionMember:
    recognizer: Recognizer
    region: CropRegion
    weight: float


class FusedRecognizer:
    """Several recognizers on one face, as one: each member's L2-normalised embedding scaled by the
    square root of its weight, end to end (weights summing to 1). The cosine of two fused embeddings
    is then the weighted mean of the members' cosines: with weights 1/std of each member's impostor
    cosines, the mean of z-normalised scores up to a constant, which calibration absorbs."""

    def __init__(self, members: list[FusionMember], input_size: int = 224) -> None:
        total = sum(member.weight for member in members)
        self.members = [FusionMember(m.recognizer, m.region, m.weight / total) for m in members]
        self.input_size = input_size

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        parts = [
            np.sqrt(member.weight)
            * member.recognizer.embed(region_crops(aligned_bgr, member.region, member.recognizer.input_size))
            for member in self.members
        ]
        return l2_normalise(np.hstack(parts))
