import cv2
import numpy as np

from app.engine.geometry import (
    ARCFACE_TEMPLATE_112,
    ID_PORTRAIT_SIZE,
    align_face,
    detection_canvas,
    id_portrait_crop,
    similarity_transform,
)


def test_similarity_transform_recovers_a_known_transform() -> None:
    angle, scale, shift = np.deg2rad(20), 1.7, np.array([12.0, -5.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = ARCFACE_TEMPLATE_112 + 30
    target = source @ rotation.T + shift
    matrix = similarity_transform(source, target)
    np.testing.assert_allclose(matrix[:, :2], rotation, atol=1e-4)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-3)


def test_align_face_puts_landmarks_on_the_template() -> None:
    image = np.zeros((300, 300, 3), np.uint8)
    landmarks = ARCFACE_TEMPLATE_112 * 2 + 40
    for x, y in landmarks.astype(int):
        cv2.circle(image, (int(x), int(y)), 3, (255, 255, 255), -1)
    aligned = align_face(image, landmarks)
    assert aligned.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE_112.astype(int):
        assert aligned[y, x].max() > 128


def test_detection_canvas_pads_scales_and_maps_back() -> None:
    image = np.zeros((126, 102, 3), np.uint8)
    canvas = detection_canvas(image, 320, 0.15)
    height, width = canvas.pixels.shape[:2]
    assert height % 32 == 0 and width % 32 == 0 and max(height, width) <= 352
    corners = np.array([[0, 0], [102, 126]], np.float32)
    mapped = corners * canvas.scale + np.asarray(canvas.offset, np.float32)
    np.testing.assert_allclose(canvas.to_source(mapped), corners, atol=1e-3)
    assert canvas.offset[0] > 0  # the face-filling portrait got a margin


def test_id_portrait_crop_has_chip_size() -> None:
    image = np.full((250, 250, 3), 90, np.uint8)
    portrait = id_portrait_crop(image, np.array([80, 70, 170, 180], np.float32))
    assert portrait.shape[:2][::-1] == ID_PORTRAIT_SIZE


def test_boxes_are_clipped_to_the_source_image() -> None:
    """A face cut by the image edge counts for its visible part only (pure-area choice)."""
    canvas = detection_canvas(np.zeros((100, 200, 3), np.uint8), target_side=320, pad_ratio=0.15)
    corners = np.array([[-10.0, -5.0], [250.0, 60.0]], dtype=np.float32)  # source coordinates, past the edges
    on_canvas = corners * canvas.scale + np.asarray(canvas.offset, dtype=np.float32)
    assert np.allclose(canvas.box_to_source(on_canvas.reshape(4)), [0, 0, 200, 60], atol=1e-3)
