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
* Decode cost is bounded before decoding, for every format, so that a file cheap to send cannot
  be expensive to decode: a JPEG with more than ``MAX_JPEG_SCANS`` scans is refused (each scan of a
  progressive JPEG is a pass over every coefficient: 23,000 tiny scans in 1.5 MB cost a minute;
  cameras and encoders write 1-15), and so is a PNG, WebP or BMP of more than
  ``MAX_FULL_DECODE_PIXELS`` (they cannot be decoded at a reduced scale, and decode 3-5x slower
  than a JPEG of the same size).
* Decode memory is bounded before decoding as well: :func:`decode_cost` computes from the header what
  the decoder will allocate and anything over ``max_decode_bytes`` is refused. A JPEG that is not one
  interleaved scan (progressive, or components in separate scans) keeps libjpeg's whole coefficient
  array at full size, 128 bytes per 8x8 block of every component, whatever the reduced scale: a 40 MP
  progressive CMYK 4:4:4 file of 600 KB needs 305 MiB. Measured peaks (peak RSS of one decode) were
  within these formulas for JPEG, PNG, WebP (with alpha) and BMP.
* A large JPEG is decoded straight to 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling, several
  times cheaper than a full decode) when its longer side stays at least ``keep_side``: the detector
  sees a few hundred pixels and the recognizer 112, so a 12 MP photo need not be decoded whole.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from app.errors import ImageValuePatternError

ACCEPTED_FORMATS = {"JPEG", "PNG", "BMP", "WEBP", "MPO"}
MIN_SIDE = 8
MAX_JPEG_SCANS = 100  # libjpeg-turbo's ``-maxscans`` and browsers cap scans the same way
MAX_FULL_DECODE_PIXELS = 16_000_000  # about 0.6 s of PNG decoding on one core
MAX_DECODE_BYTES = 128 * 1024 * 1024
JPEG_BLOCK_BYTES = 64 * 2  # libjpeg's JCOEF is 16 bits
FULL_DECODE_BYTES_PER_PIXEL = 7  # the BGR result twice (decoded, converted), or BGR + WebP's BGRA
DECODER_WORKSPACE_BYTES = 4 * 1024 * 1024  # tables and row buffers, a few MCU rows wide
PROGRESSIVE_SOF = {0xC2, 0xC6, 0xCA, 0xCE}
START_OF_SCAN = b"\xff\xda"
REDUCED_JPEG_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def jpeg_reduction(width: int, height: int, keep_side: int) -> int:
    """The largest JPEG decode scale-down (1, 2, 4 or 8) that keeps the longer side >= ``keep_side``
    (``keep_side`` 0: always 1, full size)."""
    factor = 1
    while keep_side and factor < 8 and max(width, height) // (factor * 2) >= keep_side:
        factor *= 2
    return factor


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


def jpeg_scan_count(data: bytes) -> int:
    """An upper bound of the scans in a JPEG: every SOS marker is the bytes FF DA in the file (entropy-coded
    data stuffs each FF with 00), so counting them over-counts only markers inside APPn payloads
    (an EXIF thumbnail's), never under-counts. One pass in C, whatever the file holds."""
    return data.count(START_OF_SCAN)


@dataclass(frozen=True)
class Header:
    """What the decode cost depends on, from the header alone."""

    format: str
    width: int
    height: int
    sampling: tuple[tuple[int, int], ...] = ()  # JPEG: (horizontal, vertical) factors per component
    progressive: bool = False


def read_header(data: bytes) -> Header:
    """The header as Pillow reads it (lazily); raises on anything we do not accept."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                sampling = tuple((int(h), int(v)) for _, h, v, _ in getattr(image, "layer", ()))
                progressive = bool(image.info.get("progressive") or image.info.get("progression"))
                return Header(str(image.format), int(image.width), int(image.height), sampling, progressive)
    except Exception as exc:  # Pillow's parsers raise many kinds of errors on hostile headers
        raise ImageValuePatternError() from exc


def first_scan_components(data: bytes) -> int:
    """How many components the first scan of a JPEG carries (its SOS header's Ns), walking the marker
    segments that precede it; 0 when there is no well-formed first scan. Pillow stops at that marker
    without reading it."""
    at = 2
    while at + 4 < len(data):
        if data[at] != 0xFF:
            return 0
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xDA:
            return data[at + 4]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return 0


def jpeg_coefficient_bytes(header: Header) -> int:
    """The whole coefficient array libjpeg keeps for a multi-scan JPEG: every component's blocks,
    rounded up to whole MCUs, at full size."""
    if not header.sampling:
        return 0
    h_max = max(h for h, _ in header.sampling)
    v_max = max(v for _, v in header.sampling)
    mcus_x = -(-header.width // (8 * h_max))
    mcus_y = -(-header.height // (8 * v_max))
    return sum(mcus_x * h * mcus_y * v for h, v in header.sampling) * JPEG_BLOCK_BYTES


def decode_cost(data: bytes, header: Header, factor: int) -> int:
    """Bytes the decoder will allocate for ``data`` decoded at 1/``factor`` scale (see the module
    docstring): two BGR results at that scale, plus the full coefficient array of a JPEG that is not
    one interleaved scan; other formats decode at full size only."""
    if header.format not in ("JPEG", "MPO"):
        return DECODER_WORKSPACE_BYTES + header.width * header.height * FULL_DECODE_BYTES_PER_PIXEL
    reduced = -(-header.width // factor) * -(-header.height // factor) * 3
    multi_scan = header.progressive or first_scan_components(data) < len(header.sampling)
    return DECODER_WORKSPACE_BYTES + 2 * reduced + (jpeg_coefficient_bytes(header) if multi_scan else 0)


def decode_image(
    data: bytes,
    *,
    max_pixels: int,
    keep_side: int = 0,
    max_full_decode_pixels: int = MAX_FULL_DECODE_PIXELS,
    max_jpeg_scans: int = MAX_JPEG_SCANS,
    max_decode_bytes: int = MAX_DECODE_BYTES,
) -> np.ndarray:
    """Decode JPEG/PNG/BMP/WebP bytes to BGR uint8, honouring EXIF orientation.

    Declared sizes over ``max_pixels`` are refused before decoding (decompression bombs), and so are
    files whose decode would cost more time or memory than the bounds above (decode bombs). A JPEG whose longer
    side is at least twice ``keep_side`` is decoded at a reduced scale (see above).
    """
    sniffed = sniff_format(data)
    if sniffed is None:
        raise ImageValuePatternError()
    header = read_header(data)
    image_format, width, height = header.format, header.width, header.height
    if image_format not in ACCEPTED_FORMATS or image_format.replace("MPO", "JPEG") != sniffed:
        raise ImageValuePatternError()
    if width * height > max_pixels or min(width, height) < MIN_SIDE:
        raise ImageValuePatternError()
    factor = jpeg_reduction(width, height, keep_side) if sniffed == "JPEG" else 1
    if sniffed == "JPEG":  # libjpeg-turbo decodes a baseline 40 MP JPEG in about 0.3 s
        if jpeg_scan_count(data) > max_jpeg_scans:
            raise ImageValuePatternError()
    elif width * height > max_full_decode_pixels:
        raise ImageValuePatternError()
    if decode_cost(data, header, factor) > max_decode_bytes:
        raise ImageValuePatternError()
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        # Both flags apply EXIF orientation and turn 16-bit into 8-bit.
        pixels = cv2.imdecode(buffer, REDUCED_JPEG_FLAGS[factor])
    except cv2.error as exc:
        raise ImageValuePatternError() from exc
    if pixels is None or pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageValuePatternError()
    if pixels.shape[0] * pixels.shape[1] > max_pixels or min(pixels.shape[:2]) < MIN_SIDE:
        raise ImageValuePatternError()
    return pixels
