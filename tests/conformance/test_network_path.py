"""Requests whose images ride in the query string, through a path that delivers 1,400-byte pieces.

pop-core up to 1.5, the core SDK's ``CommonRequest.add_query_param`` and Tea ``call_api`` with
``query=`` put both base64 images in the URL. Up to the sizes the contract advises and sets (2 MB per image,
8 MB per request) that works however the head is split; past them the caller gets the contract's own error
body, not a plain-text 400.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlencode

import cv2
import numpy as np
import pytest

from app.api.protocol import max_head_bytes
from app.settings import Settings
from tests.conformance.relay import Relay, relay
from tests.helpers.images import astronaut_bgr, astronaut_face_crop, b64, encode
from tests.helpers.server import run_server
from tests.hostile.rawhttp import RawResponse, connect, read_response

ADVISED_IMAGE_BYTES = 2 * 1024 * 1024  # the contract: "each image should be at most 2 MB"


@pytest.fixture(scope="module")
def relayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Relay]]:
    """An open server (no keys file: these requests are about HTTP, not signatures) behind the relay."""
    settings = Settings(object_store_root=tmp_path_factory.mktemp("oss"))
    with run_server(settings) as url, relay(url.removeprefix("http://")) as path:
        yield settings, path


def near_limit_photo(limit: int) -> bytes:
    """A real face photo just under ``limit`` bytes (noise keeps the JPEG large)."""
    image = cv2.resize(astronaut_bgr(), (1400, 1400))
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    for quality in (98, 97, 95, 92, 90):
        photo = encode(noisy, quality=quality)
        if len(photo) <= limit:
            return photo
    raise AssertionError("no quality fits")


def query_request(endpoint: str, params: dict[str, str]) -> bytes:
    target = "/?" + urlencode({"Action": "CompareFaces", "Version": "2019-03-07", **params})
    return f"POST {target} HTTP/1.1\r\nHost: {endpoint}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".encode()


def send(endpoint: str, request: bytes) -> RawResponse:
    with connect("http://" + endpoint, timeout_s=60) as sock:
        with suppress(BrokenPipeError, ConnectionResetError):  # answered before taking it all: read on
            sock.sendall(request)
        return read_response(sock)


def test_two_images_at_the_size_limit_in_the_query_string(relayed: tuple[Settings, Relay]) -> None:
    settings, path = relayed
    advised = min(settings.max_image_bytes, ADVISED_IMAGE_BYTES)  # two of them must fit the 8 MB body cap
    photo = near_limit_photo(advised)
    assert len(photo) > 0.75 * advised
    request = query_request(
        path.endpoint,
        {
            "SourceImageType": "FacePic",
            "SourceImageValue": b64(photo),
            "TargetImageType": "FacePic",
            "TargetImageValue": b64(photo),
        },
    )
    assert len(request) > 2 * advised  # megabytes of head, in 1,400-byte pieces
    response = send(path.endpoint, request)
    assert response.status == 200, response.body[:300]
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    body = response.json()
    assert body["Code"] == "1" and body["Success"] is True and body["Data"]["SimilarityScore"] > 90


def test_a_small_head_split_in_pieces_is_read_whole(relayed: tuple[Settings, Relay]) -> None:
    _, path = relayed
    face = b64(encode(astronaut_face_crop()))
    assert len(face) > 16 * 1024  # more than h11's default for an incomplete head
    response = send(
        path.endpoint,
        query_request(
            path.endpoint,
            {
                "SourceImageType": "FacePic",
                "SourceImageValue": face,
                "TargetImageType": "FacePic",
                "TargetImageValue": face,
            },
        ),
    )
    assert response.status == 200, response.body[:300]


def test_a_head_over_the_limit_gets_the_contract_error(relayed: tuple[Settings, Relay]) -> None:
    settings, path = relayed
    too_long = "base64://" + "A" * (max_head_bytes(settings) + 1024)
    started = time.monotonic()
    response = send(
        path.endpoint, query_request(path.endpoint, {"SourceImageType": "FacePic", "SourceImageValue": too_long})
    )
    assert time.monotonic() - started < 30
    assert response.status == 400
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    body = response.json()
    assert body["Code"] == "InvalidParam.ImageValuePatternError"
    assert body["Message"] == "The pattern of value of given image is not acceptable."
    assert len(body["RequestId"]) == 36


def test_a_malformed_head_keeps_the_plain_answer(tmp_path: Path) -> None:
    """Only the size refusal changes: a request line that is not HTTP still gets uvicorn's 400."""
    settings = Settings(object_store_root=tmp_path / "oss")
    with run_server(settings) as url, connect(url) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        response = read_response(sock)
    assert response.status == 400 and response.headers["content-type"].startswith("text/plain")
