"""Image bytes -> BGR uint8 pixels, with limits checked before the pixels are allocated.

Hostile input is the normal case here: whatever the bytes, :func:`decode_image` returns a
``(height, width, 3)`` uint8 array or raises :class:`ImageValuePatternError`, nothing else.

* The format is sniffed from the magic bytes (JPEG, PNG, BMP, WebP only) and must agree with what
  Pillow reads from the header, so OpenCV (which picks its own decoder from the bytes) can only
  run the decoder we accepted; GIF, TIFF, HEIC, EXR, JPEG 2000 and the rest never reach it.
* The declared size is read from the header alone (Pillow, lazy) and refused over ``max_pixels``
  or under ``MIN_SIDE`` pixels a side before any pixel is allocated (decompression bombs, 1x1).
* OpenCV decodes in memory (never via a temporary file for these formats), converts 16-bit,
  grey, alpha and CMYK to 8-bit BGR, honours EXIF orientation, and takes the first frame of an
  animated PNG or WebP. Truncated or corrupt data either decodes partially or is refused.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image

from app.errors import ImageValuePatternError

ACCEPTED_FORMATS = {"JPEG", "PNG", "BMP", "WEBP", "MPO"}
MIN_SIDE = 8


def sniff_format(data: bytes) -> str | None:
    """The format the magic bytes announce, among the accepted ones."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def read_dimensions(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header alone; raises on anything we do not accept."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return str(image.format), int(image.width), int(image.height)
    except Exception as exc:  # Pillow's parsers raise many kinds of errors on hostile headers
        raise ImageValuePatternError() from exc


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode JPEG/PNG/BMP/WebP bytes to BGR uint8, honouring EXIF orientation.

    Declared sizes over ``max_pixels`` are refused before decoding (decompression bombs).
    """
    sniffed = sniff_format(data)
    if sniffed is None:
        raise ImageValuePatternError()
    image_format, width, height = read_dimensions(data)
    if image_format not in ACCEPTED_FORMATS or image_format.replace("MPO", "JPEG") != sniffed:
        raise ImageValuePatternError()
    if width * height > max_pixels or min(width, height) < MIN_SIDE:
        raise ImageValuePatternError()
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        pixels = cv2.imdecode(buffer, cv2.IMREAD_COLOR)  # applies EXIF orientation, 16-bit -> 8-bit
    except cv2.error as exc:
        raise ImageValuePatternError() from exc
    if pixels is None or pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageValuePatternError()
    if pixels.shape[0] * pixels.shape[1] > max_pixels or min(pixels.shape[:2]) < MIN_SIDE:
        raise ImageValuePatternError()
    return pixels
