"""Apparent age and sex (app/engine/traits.py): the preprocessing as pure functions, and the vendored
networks on real faces (the astronaut ships with scikit-image; LFW photos need ../shared)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from app.engine.engine import largest_face
from app.engine.packs import load_models
from app.engine.packs.common import file_sha256
from app.engine.traits import (
    AGE_CHIP,
    CHANNEL_MEANS_RGB,
    CHIP_TEMPLATE,
    TRAITS_DIR,
    TRAITS_SHA256,
    TraitEstimator,
    Traits,
    expected_age,
    mass_below,
    trait_blob,
    trait_chip,
)
from app.settings import Settings
from tests.helpers.images import astronaut_bgr, lfw_bgr


def test_landmarks_on_the_template_give_an_identity_warp() -> None:
    image = np.random.default_rng(0).integers(0, 256, (AGE_CHIP, AGE_CHIP, 3), dtype=np.uint8)
    chip = trait_chip(image, CHIP_TEMPLATE * AGE_CHIP, AGE_CHIP)
    assert np.abs(chip.astype(int) - image[..., ::-1].astype(int)).max() <= 1


def test_chip_is_rgb_and_follows_the_landmarks_scale() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    chip = trait_chip(image, CHIP_TEMPLATE * 128 + 20, 32)
    assert chip.shape == (32, 32, 3)
    assert chip[16, 16].tolist() == [0, 0, 255]


def test_blob_subtracts_channel_means_and_divides_by_256() -> None:
    chips = np.tile(np.round(CHANNEL_MEANS_RGB).astype(np.uint8), (1, 2, 2, 1))
    chips[0, 0, 0] = [255, 0, 128]
    blob = trait_blob(chips)
    assert blob.shape == (1, 3, 2, 2) and blob.dtype == np.float32
    assert np.allclose(blob[0, :, 1, 1], (np.round(CHANNEL_MEANS_RGB) - CHANNEL_MEANS_RGB) / 256, atol=1e-6)
    assert np.allclose(blob[0, :, 0, 0], (np.array([255, 0, 128]) - CHANNEL_MEANS_RGB) / 256)


def test_expected_age_weighs_class_zero_as_a_quarter_year() -> None:
    probabilities = np.zeros((3, 81), np.float32)
    probabilities[0, 0] = 1
    probabilities[1, 30] = 1
    probabilities[2, [10, 20]] = 0.5
    assert expected_age(probabilities).tolist() == pytest.approx([0.25, 30.0, 15.0])


def test_mass_below_counts_only_younger_classes() -> None:
    probabilities = np.zeros((1, 81), np.float32)
    probabilities[0, [17, 18]] = 0.5
    assert mass_below(probabilities, 18).tolist() == pytest.approx([0.5])


def test_vendored_weights_match_their_pinned_sha256() -> None:
    for name, digest in TRAITS_SHA256.items():
        assert file_sha256(TRAITS_DIR / name) == digest


@pytest.fixture(scope="module")
def estimate() -> Callable[[np.ndarray], Traits]:
    detector = load_models(Settings()).detector
    estimator = TraitEstimator.load()

    def run(image: np.ndarray) -> Traits:
        return estimator.estimate([(image, largest_face(detector.detect(image)).landmarks)])[0]

    return run


def test_the_astronaut_looks_like_an_adult_woman(estimate: Callable[[np.ndarray], Traits]) -> None:
    traits = estimate(astronaut_bgr())
    assert traits.p_male < 0.1
    assert 20 < traits.age < 60 and traits.p_under_18 < 0.1


def test_lfw_men_and_women_are_told_apart(estimate: Callable[[np.ndarray], Traits]) -> None:
    assert estimate(lfw_bgr("George_W_Bush", 1)).p_male > 0.9
    assert estimate(lfw_bgr("Laura_Bush", 1)).p_male < 0.2  # 0.12 with the default pack's landmarks
    assert estimate(lfw_bgr("Serena_Williams", 1)).p_male < 0.1


def test_toddlers_look_under_18(estimate: Callable[[np.ndarray], Traits]) -> None:
    for name in ("Tristan_Gretzky", "Grace_Dodd"):
        traits = estimate(lfw_bgr(name, 1))
        assert traits.age < 10 and traits.p_under_18 > 0.9


def test_an_empty_batch_runs_no_network() -> None:
    assert TraitEstimator.load().estimate([]) == []


def test_openvino_and_onnxruntime_give_the_same_estimates() -> None:
    image = astronaut_bgr()
    landmarks = largest_face(load_models(Settings()).detector.detect(image)).landmarks
    ov, ort = (
        TraitEstimator.load(backend=backend).estimate([(image, landmarks)])[0]
        for backend in ("openvino", "onnxruntime")
    )
    assert ov.age == pytest.approx(ort.age, abs=1e-3)
    assert ov.p_male == pytest.approx(ort.p_male, abs=1e-5)
