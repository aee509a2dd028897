"""Image bytes -> BGR uint8 pixels, with limits checked before the pixels are allocated."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from app.errors import ImageValuePatternError

ACCEPTED_FORMATS = {"JPEG", "PNG", "BMP", "WEBP", "MPO"}
MIN_SIDE = 8


def read_dimensions(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header alone; raises on anything we do not accept."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return str(image.format), int(image.width), int(image.height)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ImageValuePatternError() from exc


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode JPEG/PNG/BMP/WebP bytes to BGR uint8, honouring EXIF orientation.

    Declared sizes over ``max_pixels`` are refused before decoding (decompression bombs).
    """
    if not data:
        raise ImageValuePatternError()
    image_format, width, height = read_dimensions(data)
    if image_format not in ACCEPTED_FORMATS:
        raise ImageValuePatternError()
    if width * height > max_pixels or min(width, height) < MIN_SIDE:
        raise ImageValuePatternError()
    buffer = np.frombuffer(data, dtype=np.uint8)
    pixels = cv2.imdecode(buffer, cv2.IMREAD_COLOR)  # applies EXIF orientation, 16-bit -> 8-bit
    if pixels is None or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageValuePatternError()
    return pixels
