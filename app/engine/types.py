"""The engine's data types and the small interfaces a model pack implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np


class ImageType(str, Enum):
    FACE_PIC = "FacePic"
    ID_PIC = "IDPic"


def pair_type(a: ImageType, b: ImageType) -> str:
    """Calibration key of a pair, order-free: ``FacePic-FacePic`` or ``FacePic-IDPic``."""
    first, second = sorted((a.value, b.value))
    return f"{first}-{second}"


@dataclass(frozen=True)
class DetectedFace:
    """A face found by a detector, in the coordinates of the image it was given."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    landmarks: np.ndarray  # (5, 2) eyes (image left, right), nose, mouth corners (left, right)
    score: float

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


@dataclass(frozen=True)
class Face:
    """One embedded face: what ``FaceEngine.embed`` returns."""

    embedding: np.ndarray  # (D,), L2-normalised float32
    box: np.ndarray
    landmarks: np.ndarray
    detector_score: float
    image_type: ImageType = ImageType.FACE_PIC
    apparent_age: tuple[float, float] | None = None  # (years, P(under 18)) as it looks; None: not estimated


@dataclass(frozen=True)
class Comparison:
    """What ``FaceEngine.compare`` returns."""

    score: float  # SimilarityScore, [0, 100]
    cosine: float
    thresholds: dict[str, float]  # false accept rate key ("0.001") -> score threshold
    pair_type: str
    stratum: str | None = None  # whose impostors the thresholds were measured on (app.engine.strata)


class Detector(Protocol):
    def detect(self, image_bgr: np.ndarray) -> list[DetectedFace]:
        """All faces in a BGR uint8 image, in its own pixel coordinates."""
        ...


class AgeEstimator(Protocol):
    model_id: str

    def apparent_age(self, faces: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """(N, 2) each face's (BGR image, (5, 2) landmarks) apparent age in years and P(under 18)."""
        ...


class Recognizer(Protocol):
    input_size: int

    def embed(self, aligned_bgr: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) BGR uint8 aligned crops -> (N, D) L2-normalised float32 embeddings."""
        ...
