"""Property fuzzing of the image path with hypothesis (bounded budget, derandomized so CI is
repeatable): whatever the bytes or text, decoding returns 8-bit BGR pixels within the limits or
raises ImageValuePatternError, and address parsing returns an address or raises it. Nothing else.

Inputs that once broke a property are kept in ``REGRESSIONS`` and ``@example``s.
"""

from __future__ import annotations

import base64
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.errors import ImageValuePatternError
from app.images.addresses import InlineImage, OssAddress, UrlAddress, decode_base64_value, parse_address
from app.images.decode import MIN_SIDE, decode_image
from tests.helpers.images import encode
from tests.hostile.hostile_images import pil_bytes

SCALE = int(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=50 pytest tests/hostile: a longer campaign
MAX_PIXELS = 4_000_000
MAGICS = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF\x00\x00\x00\x00WEBP", b"GIF89a"]
FUZZ = settings(
    max_examples=150 * SCALE, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def small_image(fmt: str) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    pixels[::4] = 255  # some structure, so that compressed data has runs and markers
    if fmt == "webp-lossless":
        from PIL import Image

        return pil_bytes(Image.fromarray(pixels), "WEBP", lossless=True)
    return encode(pixels, fmt)


SEEDS = {fmt: small_image(fmt) for fmt in (".jpg", ".png", ".bmp", ".webp", "webp-lossless")}

# Inputs found while building these tests; kept so they are always tried.
REGRESSIONS: list[bytes] = [
    SEEDS[".jpg"][:-2],  # JPEG without EOI: OpenCV 5 returns nothing (refused, not a crash)
    b"BM" + SEEDS[".jpg"],  # BMP magic on JPEG data: Pillow and the magic bytes disagree
    b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 0, 0) + b"\x08\x02\x00\x00\x00",
    b"RIFF\xff\xff\xff\xffWEBPVP8X" + b"\xff" * 20,
]


def check_decode(data: bytes) -> None:
    try:
        pixels = decode_image(data, max_pixels=MAX_PIXELS)
    except ImageValuePatternError:
        return
    assert isinstance(pixels, np.ndarray)
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.shape[0] * pixels.shape[1] <= MAX_PIXELS
    assert min(pixels.shape[:2]) >= MIN_SIDE


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A valid small image, then byte edits: overwrite, insert, delete, truncate, splice."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "truncate", "splice", "header"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            other = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
            data[at:] = other[draw(st.integers(0, len(other) - 1)) :]
        elif kind == "header" and len(data) > 40:
            # sizes and lengths live in the first bytes of every format: hit them with big numbers
            at = draw(st.integers(2, 36))
            data[at : at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"]))
    return bytes(data)


@pytest.mark.parametrize("data", REGRESSIONS)
def test_regressions(data: bytes) -> None:
    check_decode(data)


@settings(FUZZ, max_examples=300 * SCALE)
@given(mutated_images())
def test_decode_mutated_images(data: bytes) -> None:
    check_decode(data)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=512),
        st.builds(lambda magic, rest: magic + rest, st.sampled_from(MAGICS), st.binary(max_size=512)),
    )
)
@example(b"")
@example(b"\xff\xd8\xff\xe0")
def test_decode_random_bytes(data: bytes) -> None:
    check_decode(data)


@FUZZ
@given(st.text(max_size=300))
@example("base64://")
@example("oss://a:")
@example("oss://bucket:/")
@example("base64://data:image/png;base64,")
@example("HTTP://x")
@example("base64://\u0660\u0661")
def test_parse_address_never_raises_anything_else(value: str) -> None:
    for candidate in (value, "base64://" + value, "oss://" + value, "http://" + value):
        try:
            address = parse_address(candidate)
        except ImageValuePatternError:
            continue
        assert isinstance(address, UrlAddress | OssAddress | InlineImage)
        if isinstance(address, OssAddress):
            assert address.bucket and address.key and not address.key.startswith("/")


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["", "data:image/jpeg;base64,", "  ", "\n"]))
def test_base64_round_trip(data: bytes, prefix: str) -> None:
    text = base64.b64encode(data).decode()
    if not data:
        with pytest.raises(ImageValuePatternError):
            decode_base64_value(prefix + text)
        return
    assert decode_base64_value(prefix + text) == data
    assert decode_base64_value(prefix + text.rstrip("=")) == data  # missing padding tolerated
    assert decode_base64_value(prefix + "\n".join(text[i : i + 76] for i in range(0, len(text), 76))) == data
