"""Decode memory is bounded before decoding: the cost is computed from the header, refused over
``max_decode_bytes``, and the formula is an upper bound of what the decoders take."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from app.errors import ImageValuePatternError
from app.images.decode import (
    DECODER_WORKSPACE_BYTES,
    MAX_DECODE_BYTES,
    decode_cost,
    decode_image,
    jpeg_reduction,
    read_header,
)
from tests.helpers.images import astronaut_bgr
from tests.hostile.decode_memory_bombs import jpeg_bytes, progressive_cmyk_bomb
from tests.hostile.hostile_images import pil_bytes

MiB = 1024 * 1024


def cost(data: bytes, keep_side: int = 1280) -> int:
    header = read_header(data)
    return decode_cost(
        data, header, jpeg_reduction(header.width, header.height, keep_side) if header.format == "JPEG" else 1
    )


def photo(size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(astronaut_bgr(), size, interpolation=cv2.INTER_LINEAR)


def test_progressive_cmyk_444_40_mp_is_refused_fast_at_any_scale() -> None:
    bomb = progressive_cmyk_bomb()
    assert len(bomb) < 1024 * 1024
    assert cost(bomb) > 300 * MiB  # 305 MiB of coefficients, reduced scale or not
    for keep_side in (0, 1280, 100):
        started = time.perf_counter()
        with pytest.raises(ImageValuePatternError):
            decode_image(bomb, max_pixels=40_000_000, keep_side=keep_side)
        assert time.perf_counter() - started < 0.5  # refused from the header, not after decoding


def test_the_same_frame_as_one_interleaved_scan_costs_only_its_reduced_result() -> None:
    baseline = jpeg_bytes("CMYK", (7300, 5472), subsampling=0)
    assert cost(baseline) == DECODER_WORKSPACE_BYTES + 2 * 1825 * 1368 * 3  # decoded at 1/4
    assert decode_image(baseline, max_pixels=40_000_000, keep_side=1280).shape == (1368, 1825, 3)


def test_components_in_separate_scans_count_as_multi_scan() -> None:
    """A sequential JPEG whose first scan does not carry every component needs the full buffer too."""
    data = bytearray(jpeg_bytes("RGB", (64, 64)))
    at = data.index(b"\xff\xda")
    assert data[at + 4] == 3
    data[at + 4] = 1  # the first scan now declares one component (the decoder need not succeed)
    header = read_header(bytes(data))
    assert decode_cost(bytes(data), header, 1) == DECODER_WORKSPACE_BYTES + 2 * 64 * 64 * 3 + (64 + 16 + 16) * 128


@pytest.mark.parametrize(
    ("ext", "size", "params"),
    [
        (".jpg", (4000, 3000), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),  # a 12 MP phone photo, re-saved progressive
        (".jpg", (7300, 5472), []),  # 40 MP baseline, decoded at 1/4
        (".png", (4000, 3000), []),
        (".webp", (3000, 2000), [cv2.IMWRITE_WEBP_QUALITY, 90]),
    ],
    ids=["jpeg-12mp-progressive", "jpeg-40mp-baseline", "png-12mp", "webp-6mp"],
)
def test_normal_photos_pass_the_default_budget(ext: str, size: tuple[int, int], params: list[int]) -> None:
    data = cv2.imencode(ext, photo(size), params)[1].tobytes()
    assert cost(data) < MAX_DECODE_BYTES
    assert decode_image(data, max_pixels=40_000_000, keep_side=1280).ndim == 3


def test_budget_is_a_setting() -> None:
    data = cv2.imencode(".png", photo((400, 300)))[1].tobytes()
    budget = DECODER_WORKSPACE_BYTES + 400 * 300 * 7
    assert decode_image(data, max_pixels=40_000_000, max_decode_bytes=budget).shape == (300, 400, 3)
    with pytest.raises(ImageValuePatternError):
        decode_image(data, max_pixels=40_000_000, max_decode_bytes=budget - 1)


MEASURE = """
import re, sys
import cv2, numpy as np
def kib(field):
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
data = open(sys.argv[1], "rb").read()
flag = int(sys.argv[2])
for ext in (".png", ".jpg", ".webp", ".bmp"):  # load every decoder before the baseline
    cv2.imdecode(cv2.imencode(ext, np.zeros((8, 8, 3), np.uint8))[1], cv2.IMREAD_COLOR)
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from now
before = kib("VmRSS")
pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
print((kib("VmHWM") - before) * 1024)
"""
FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def flat(mode: str, fmt: str, size: tuple[int, int], **options: object) -> bytes:
    colour = {"RGB": (10, 20, 30), "RGBA": (10, 20, 30, 40), "CMYK": (10, 20, 30, 40)}[mode]
    return pil_bytes(Image.new(mode, size, colour), fmt, **options)


@pytest.mark.parametrize(
    ("data", "keep_side"),
    [
        (flat("CMYK", "JPEG", (4000, 3000), progressive=True, subsampling=0), 1280),
        (flat("RGB", "JPEG", (4000, 3000), progressive=True, subsampling=2), 1280),
        (flat("CMYK", "JPEG", (4000, 3000), subsampling=0), 0),
        (flat("RGBA", "PNG", (3000, 3000)), 0),
        (flat("RGBA", "WEBP", (3000, 3000), lossless=True), 0),
        (cv2.imencode(".bmp", np.zeros((3000, 3000, 3), np.uint8))[1].tobytes(), 0),
    ],
    ids=["jpeg-progressive-cmyk", "jpeg-progressive-420", "jpeg-baseline-full", "png-rgba", "webp-rgba", "bmp"],
)
def test_cost_is_an_upper_bound_of_the_decoders_peak_memory(tmp_path: Path, data: bytes, keep_side: int) -> None:
    """Peak RSS of one decode, in a fresh process, stays within the computed cost (and not far under it)."""
    header = read_header(data)
    factor = jpeg_reduction(header.width, header.height, keep_side) if header.format == "JPEG" else 1
    path = tmp_path / "image"
    path.write_bytes(data)
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(FLAGS[factor])], capture_output=True, check=True
    )
    measured = int(run.stdout)
    computed = decode_cost(data, header, factor)
    assert measured <= computed, (measured, computed)
    assert measured > computed * 0.6, (measured, computed)  # the formula is a bound, not a guess
