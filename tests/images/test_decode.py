import cv2
import numpy as np
import pytest

from app.errors import ImageValuePatternError
from app.images.decode import decode_image, jpeg_reduction

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


@pytest.mark.parametrize(
    ("size", "keep_side", "factor"),
    [
        ((250, 250), 1280, 1),
        ((4000, 3000), 1280, 2),
        ((6000, 4000), 700, 8),
        ((3000, 4000), 1000, 4),
        ((4000, 3000), 0, 1),
    ],
)
def test_jpeg_reduction_keeps_the_longer_side(size: tuple[int, int], keep_side: int, factor: int) -> None:
    assert jpeg_reduction(*size, keep_side) == factor


def test_large_jpeg_is_decoded_reduced_and_still_oriented() -> None:
    import io

    from PIL import Image

    wide = cv2.resize(PIXELS, (2600, 1000), interpolation=cv2.INTER_NEAREST)
    image = Image.fromarray(wide[..., ::-1])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=90)
    data = buffer.getvalue()
    assert decode_image(data, max_pixels=10**8).shape == (2600, 1000, 3)
    assert decode_image(data, max_pixels=10**8, keep_side=1280).shape == (1300, 500, 3)
    assert decode_image(data, max_pixels=10**8, keep_side=600).shape == (650, 250, 3)
    png = cv2.imencode(".png", wide)[1].tobytes()  # only JPEG decoders scale while decoding
    assert decode_image(png, max_pixels=10**8, keep_side=600).shape == (1000, 2600, 3)


def test_jpeg_with_too_many_scans_is_refused_before_decoding() -> None:
    import time

    from tests.hostile.hostile_images import progressive_scan_bomb

    bomb = progressive_scan_bomb()
    started = time.perf_counter()
    with pytest.raises(ImageValuePatternError):
        decode_image(bomb, max_pixels=40_000_000, keep_side=1280)
    assert time.perf_counter() - started < 0.5  # refused from a count, not after decoding
    _, normal = cv2.imencode(".jpg", PIXELS, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert decode_image(normal.tobytes(), max_pixels=10_000).shape == (64, 48, 3)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP"])
def test_full_size_decode_is_bounded(fmt: str) -> None:
    from tests.hostile.hostile_images import full_decode_bomb

    with pytest.raises(ImageValuePatternError):
        decode_image(full_decode_bomb(fmt, side=4100), max_pixels=40_000_000)
    small = full_decode_bomb(fmt, side=400)
    assert decode_image(small, max_pixels=40_000_000).shape == (400, 400, 3)
