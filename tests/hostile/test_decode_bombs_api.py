"""Decode-time bombs over HTTP: refused in under a second, and a normal request sent alongside is
served normally (nothing keeps decoding after the answer)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import compare
from tests.helpers.images import b64
from tests.hostile.decode_memory_bombs import progressive_cmyk_bomb
from tests.hostile.hostile_images import face_jpeg, full_decode_bomb, progressive_scan_bomb

PATTERN = "InvalidParam.ImageValuePatternError"


def pair(target: bytes) -> dict[str, str]:
    return {
        "SourceImageType": "FacePic",
        "SourceImageValue": b64(face_jpeg()),
        "TargetImageType": "FacePic",
        "TargetImageValue": b64(target),
    }


def timed(base_url: str, target: bytes) -> tuple[float, httpx.Response]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        started = time.perf_counter()
        response = compare(client, pair(target))
        return time.perf_counter() - started, response


@pytest.mark.parametrize(
    "bomb",
    [progressive_scan_bomb(), full_decode_bomb("PNG"), full_decode_bomb("WEBP"), progressive_cmyk_bomb()],
    # the last: 40 MP progressive CMYK 4:4:4, 600 KB, 305 MiB to decode (refused from its header for memory)
    ids=["progressive-3000-scans", "png-36mp", "webp-36mp", "progressive-cmyk-40mp"],
)
def test_bombs_are_refused_fast_while_a_normal_request_is_served(server: str, bomb: bytes) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        bombs = [pool.submit(timed, server, bomb) for _ in range(2)]
        normal = pool.submit(timed, server, face_jpeg())
        for future in bombs:
            seconds, response = future.result()
            assert response.status_code == 400 and response.json()["Code"] == PATTERN
            assert seconds < 1.0, f"bomb answered in {seconds:.2f} s"
        seconds, response = normal.result()
        assert response.status_code == 200, response.text
        assert response.json()["Data"]["SimilarityScore"] > 99
