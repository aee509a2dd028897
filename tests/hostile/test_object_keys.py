"""``oss://`` object keys an attacker can write: every one is a spec error (4xx), never a 500.

Fuzzed through the address parser and the local object store directly (fast), and a few of the
worst through the real server."""

from __future__ import annotations

import asyncio
import tempfile
from contextlib import suppress
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import ImageNotFound, ImageValuePatternError
from app.images.addresses import OssAddress, parse_address
from app.images.object_store import LocalObjectStore
from tests.conftest import compare
from tests.helpers.images import b64
from tests.hostile.hostile_images import face_jpeg

SPEC_ERRORS = (ImageValuePatternError, ImageNotFound)
WORST = [
    "a\x00b.jpg",
    "x" * 300 + ".jpg",
    "/".join(["d"] * 2000) + "/f.jpg",
    "/".join(["x" * 250] * 20),
    "../../../../etc/passwd",
    "faces/../../other-bucket/a.jpg",
    "\\\\server\\share",
    "a\nb",
    "é" * 600,
    "%00",
    ".",
    "..",
    "a/./b/../c",
]


async def load(store: LocalObjectStore, value: str) -> bytes:
    address = parse_address(value)
    assert isinstance(address, OssAddress)
    return await store.get(address.bucket, address.key, 1024)


@pytest.mark.parametrize("key", WORST, ids=range(len(WORST)))
def test_worst_keys_are_spec_errors(tmp_path: Path, key: str) -> None:
    (tmp_path / "bucket").mkdir()
    with pytest.raises(SPEC_ERRORS):
        asyncio.run(load(LocalObjectStore(tmp_path), f"oss://bucket:{key}"))


@settings(max_examples=400, deadline=None)
@given(st.text(st.characters(codec="utf-8"), min_size=0, max_size=40).map(lambda s: s * 30))
def test_fuzzed_keys_are_spec_errors_or_found(key: str) -> None:
    root = Path(tempfile.gettempdir()) / "comparefaces-object-key-fuzz"
    (root / "bucket").mkdir(parents=True, exist_ok=True)
    with suppress(*SPEC_ERRORS):
        asyncio.run(load(LocalObjectStore(root), f"oss://bucket:{key}"))


@pytest.mark.parametrize("key", WORST[:4], ids=["nul", "long-name", "deep", "deep-long"])
def test_worst_keys_over_http(client: httpx.Client, key: str) -> None:
    response = compare(
        client,
        {
            "SourceImageType": "FacePic",
            "SourceImageValue": b64(face_jpeg()),
            "TargetImageType": "FacePic",
            "TargetImageValue": f"oss://my-bucket:{key}",
        },
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["Code"] in {"InvalidParam.ImageValuePatternError", "InvalidParam.ImageNotFound"}
