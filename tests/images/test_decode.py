import cv2
import numpy as np
import pytest

from app.errors import ImageValuePatternError
from app.images.decode import decode_image

PIXELS = np.random.default_rng(0).integers(0, 255, (64, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp"])
def test_accepted_formats(ext: str) -> None:
    ok, data = cv2.imencode(ext, PIXELS)
    assert decode_image(data.tobytes(), max_pixels=10_000).shape == (64, 48, 3)


def test_16_bit_and_grey_images_become_8_bit_bgr() -> None:
    _, data = cv2.imencode(".png", (PIXELS.astype(np.uint16) * 257))
    assert decode_image(data.tobytes(), max_pixels=10_000).dtype == np.uint8
    _, grey = cv2.imencode(".png", PIXELS[..., 0])
    assert decode_image(grey.tobytes(), max_pixels=10_000).shape == (64, 48, 3)


@pytest.mark.parametrize("data", [b"", b"GIF89a....", b"not an image", b"\xff\xd8\xff\xe0" + b"\x00" * 50])
def test_undecodable_bytes(data: bytes) -> None:
    with pytest.raises(ImageValuePatternError):
        decode_image(data, max_pixels=10_000)


def test_pixel_cap_is_checked_before_decoding() -> None:
    _, data = cv2.imencode(".png", PIXELS)
    with pytest.raises(ImageValuePatternError):
        decode_image(data.tobytes(), max_pixels=1000)
