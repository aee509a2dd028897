"""SCRFD decoding (pure numpy, no weights) and, where the shared models exist, the real detector."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.engine.scrfd import (
    ScrfdDetector,
    ScrfdOutputError,
    anchor_centers,
    decode_scrfd,
    fit_canvas,
    split_heads,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DET_500M = SHARED / "models" / "det_500m.onnx"
LFW = SHARED / "data" / "lfw-dev"


def empty_heads(height: int, width: int, anchors: int = 2) -> list[np.ndarray]:
    """insightface's 9-output layout (scores x3, boxes x3, keypoints x3), all scores zero."""
    counts = [(height // s) * (width // s) * anchors for s in (8, 16, 32)]
    return [np.zeros((n, c), np.float32) for c in (1, 4, 10) for n in counts]


def test_anchor_centers_are_row_major_with_adjacent_anchors() -> None:
    centers = anchor_centers(16, 24, 8, 2)
    assert centers.shape == (2 * 3 * 2, 2)
    np.testing.assert_array_equal(centers[:4], [[0, 0], [0, 0], [8, 0], [8, 0]])
    np.testing.assert_array_equal(centers[6], [0, 8])


def test_decode_distance_boxes_and_keypoints_at_the_right_anchor() -> None:
    height, width = 64, 96
    heads = empty_heads(height, width)
    # stride 16 (second score output): row 2, col 3, anchor 1 -> centre (48, 32)
    index = (2 * (width // 16) + 3) * 2 + 1
    heads[1][index, 0] = 0.9
    heads[4][index] = [1.0, 0.5, 2.0, 1.5]  # left, top, right, bottom in strides
    heads[7][index] = np.arange(10, dtype=np.float32) / 10
    scores, boxes, landmarks = decode_scrfd(heads, height, width, 0.5)
    np.testing.assert_allclose(scores, [0.9])
    np.testing.assert_allclose(boxes[0], [48 - 16, 32 - 8, 48 + 32, 32 + 24])
    expected = np.array([48, 32]) + (np.arange(10).reshape(5, 2) / 10) * 16
    np.testing.assert_allclose(landmarks[0], expected, rtol=1e-6)


def test_decode_ignores_output_order_and_batch_dimension() -> None:
    height, width = 32, 32
    heads = empty_heads(height, width)
    heads[0][5, 0] = 0.8  # stride 8
    heads[2][0, 0] = 0.7  # stride 32
    reference = decode_scrfd(heads, height, width, 0.5)
    shuffled = [heads[i][None] for i in (8, 2, 4, 6, 0, 7, 3, 1, 5)]
    for expected, actual in zip(reference, decode_scrfd(shuffled, height, width, 0.5), strict=True):
        np.testing.assert_allclose(actual, expected)
    assert sorted(reference[0].tolist()) == pytest.approx([0.7, 0.8])


def test_decode_with_nothing_above_threshold_is_empty() -> None:
    scores, boxes, landmarks = decode_scrfd(empty_heads(64, 64), 64, 64, 0.5)
    assert scores.shape == (0,) and boxes.shape == (0, 4) and landmarks.shape == (0, 5, 2)


def test_models_without_keypoints_or_with_odd_outputs_are_refused() -> None:
    heads = empty_heads(64, 64)
    with pytest.raises(ScrfdOutputError, match="keypoint"):
        split_heads(heads[:6])
    with pytest.raises(ScrfdOutputError, match="shape"):
        split_heads([*heads, np.zeros((4, 7), np.float32)])
    with pytest.raises(ScrfdOutputError, match="fit"):
        decode_scrfd(heads, 96, 64, 0.5)


def test_fit_canvas_pads_and_trims_right_and_bottom() -> None:
    pixels = np.full((40, 70, 3), 9, np.uint8)
    fitted = fit_canvas(pixels, 64, 64)
    assert fitted.shape == (64, 64, 3)
    assert (fitted[:40, :64] == 9).all() and (fitted[40:] == 0).all()


class FakeNetwork:
    """Stands in for a runtime: one face whose box and keypoints sit at fixed canvas positions."""

    output_names = [f"out{i}" for i in range(9)]

    def __init__(self, fixed: tuple[int, int] | None = None) -> None:
        height, width = fixed or (None, None)
        self.input_shape = (1, 3, height, width)
        self.shapes: list[tuple[int, ...]] = []

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        self.shapes.append(blob.shape)
        height, width = blob.shape[2:]
        heads = empty_heads(height, width)
        index = (4 * (width // 8) + 4) * 2  # stride 8, row 4, col 4 -> centre (32, 32)
        heads[0][index, 0] = 0.95
        heads[3][index] = [2, 2, 2, 2]
        heads[6][index] = [-1, -1, 1, -1, 0, 0, -1, 1, 1, 1]
        return heads


def test_detector_maps_canvas_coordinates_back_to_the_source_image() -> None:
    network = FakeNetwork()
    detector = ScrfdDetector(network, target_side=128, pad_ratio=0.0)
    image = np.zeros((256, 512, 3), np.uint8)  # scaled by 1/4 onto a 128 x 64 canvas
    (face,) = detector.detect(image)
    assert network.shapes == [(1, 3, 64, 128)]
    np.testing.assert_allclose(face.box, [64, 64, 192, 192])
    np.testing.assert_allclose(face.landmarks[0], [96, 96])
    assert face.score == pytest.approx(0.95)


def test_detector_with_a_fixed_input_size_gets_exactly_that_size() -> None:
    network = FakeNetwork(fixed=(96, 96))
    detector = ScrfdDetector(network, target_side=640, pad_ratio=0.0)
    assert detector.target_side == 96
    detector.detect(np.zeros((100, 200, 3), np.uint8))
    assert network.shapes == [(1, 3, 96, 96)]


@pytest.mark.skipif(not DET_500M.is_file() or not LFW.is_dir(), reason=f"shared models/photos absent: {SHARED}")
def test_real_scrfd_finds_the_face_and_its_landmarks() -> None:
    from app.engine.runtime import onnxruntime_network

    detector = ScrfdDetector(onnxruntime_network(DET_500M, "cpu", 1), target_side=320, score_threshold=0.5)
    image = cv2.imread(str(LFW / "Akhmed_Zakayev" / "Akhmed_Zakayev_0001.jpg"))
    assert image is not None
    faces = detector.detect(image)
    assert len(faces) >= 1
    face = max(faces, key=lambda f: f.area)
    x1, y1, x2, y2 = face.box
    assert 60 < x1 < x2 < 200 and 30 < y1 < y2 < 220  # LFW crops centre the face in 250x250
    assert ((face.landmarks >= [x1, y1]) & (face.landmarks <= [x2, y2])).all()
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert detector.detect(np.full((200, 300, 3), 127, np.uint8)) == []
