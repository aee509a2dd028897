"""Apparent age and sex of a face: Cydral Technology's dlib age predictor (ResNet-10, 81 classes for
0-80 years) and gender classifier, CC0, as ONNX graphs vendored in ``app/models/dlib-age-gender``.

These are estimates of how a face looks, used to choose which impostor population a pair is
compared against; they are never returned as facts about a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from app.engine.geometry import similarity_transform
from app.engine.packs.common import verified
from app.engine.runtime import Network, open_network

TRAITS_DIR = Path(str(resources.files("app") / "models" / "dlib-age-gender"))
AGE_MODEL = "age-v1.onnx"
SEX_MODEL = "gender-v1.onnx"
TRAITS_SHA256 = {
    AGE_MODEL: "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
    SEX_MODEL: "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
}
AGE_CHIP = 64
SEX_CHIP = 32
# Where YuNet's 5 landmarks (eyes, nose, mouth corners) fall, as fractions of the side, in the chip
# the networks were trained on (dlib's face chip with padding 0.2): the median over 577 LFW and
# East-Asian photos of YuNet's landmarks mapped into the chip dlib's own 5-point model produces.
CHIP_TEMPLATE = np.array(
    [[0.29599, 0.28018], [0.68890, 0.28355], [0.49165, 0.50921], [0.31919, 0.68074], [0.65799, 0.68956]],
    dtype=np.float32,
)
CHANNEL_MEANS_RGB = np.array([122.782, 117.001, 104.298], dtype=np.float32)
AGE_CLASS_YEARS = np.array([0.25, *range(1, 81)], dtype=np.float32)  # class 0 is "under one"


@dataclass(frozen=True)
class Traits:
    age: float  # expected apparent age in years (0.25-80)
    p_under_18: float  # the age model's probability mass below 18 years
    p_male: float


def trait_chip(image_bgr: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` RGB chip of the face with these 5 landmarks, as the networks expect."""
    matrix = similarity_transform(landmarks, CHIP_TEMPLATE * size)
    chip = cv2.warpAffine(image_bgr, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(chip[..., ::-1])


def trait_blob(chips_rgb: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) RGB uint8 -> (N, 3, S, S) float32: channel means off, divided by 256."""
    blob = (chips_rgb.astype(np.float32) - CHANNEL_MEANS_RGB) / np.float32(256.0)
    return np.ascontiguousarray(blob.transpose(0, 3, 1, 2))


def expected_age(probabilities: np.ndarray) -> np.ndarray:
    """(N, 81) class probabilities -> (N,) expected age in years."""
    return (np.asarray(probabilities, np.float32) @ AGE_CLASS_YEARS).astype(np.float32)


def mass_below(probabilities: np.ndarray, years: float) -> np.ndarray:
    """(N, 81) class probabilities -> (N,) probability that the apparent age is under ``years``."""
    return np.asarray(probabilities, np.float32)[:, years > AGE_CLASS_YEARS].sum(axis=1)


class TraitEstimator:
    """Apparent age and P(male) of faces given by their image and 5 landmarks. Thread-safe."""

    def __init__(self, age_network: Network, sex_network: Network) -> None:
        self._age = age_network
        self._sex = sex_network

    @classmethod
    def load(
        cls, provider: str = "cpu", backend: str = "openvino", intra_op_threads: int = 1, folder: Path = TRAITS_DIR
    ) -> TraitEstimator:
        """On OpenVINO by default, as the recognizers (measured on this project's 2-core dev machine: the
        age network takes 4.1 ms CPU there against onnxruntime's 5.5 ms, same outputs within 3e-7)."""
        networks = [
            open_network(
                verified(folder / name, TRAITS_SHA256[name]),
                provider=provider,
                backend=backend,
                intra_op_threads=intra_op_threads,
            )
            for name in (AGE_MODEL, SEX_MODEL)
        ]
        return cls(*networks)

    model_id = "dlib-age-v1"

    def apparent_age(self, faces: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """(N, 2) each face's expected apparent age in years and probability of looking under 18
        (the age network only)."""
        chips = np.stack([trait_chip(image, landmarks, AGE_CHIP) for image, landmarks in faces])
        probabilities = self._age.run(trait_blob(chips))[0].reshape(len(faces), -1)
        return np.stack([expected_age(probabilities), mass_below(probabilities, 18)], axis=1)

    def estimate(self, faces: list[tuple[np.ndarray, np.ndarray]]) -> list[Traits]:
        """One ``Traits`` per (BGR image, (5, 2) landmarks), all faces in one call per network."""
        if not faces:
            return []
        age_chips = np.stack([trait_chip(image, landmarks, AGE_CHIP) for image, landmarks in faces])
        sex_chips = np.stack([trait_chip(image, landmarks, SEX_CHIP) for image, landmarks in faces])
        age_probabilities = self._age.run(trait_blob(age_chips))[0].reshape(len(faces), -1)
        sex_probabilities = self._sex.run(trait_blob(sex_chips))[0].reshape(len(faces), -1)  # female, male
        ages = expected_age(age_probabilities)
        minors = mass_below(age_probabilities, 18)
        return [
            Traits(age=float(a), p_under_18=float(m), p_male=float(p))
            for a, m, p in zip(ages, minors, sex_probabilities[:, 1], strict=True)
        ]
