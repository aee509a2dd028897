"""Every row of the spec's error tables that a request can trigger, in JSON and XML."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.settings import Settings
from tests.conftest import API, compare
from tests.helpers.images import astronaut_face_crop, b64, encode

FACE = b64(encode(astronaut_face_crop()))
BLANK = b64(encode(np.full((200, 200, 3), 180, np.uint8)))


def params(
    source_type: str = "FacePic", source: str = FACE, target_type: str = "FacePic", target: str = FACE
) -> dict[str, str]:
    return {
        "SourceImageType": source_type,
        "SourceImageValue": source,
        "TargetImageType": target_type,
        "TargetImageValue": target,
    }


def assert_error(response: httpx.Response, code: str, message: str, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert body["Code"] == code
    assert body["Message"] == message
    assert response.headers["x-acs-request-id"] == body["RequestId"]
    assert "x-acs-retry-after" not in response.headers


CASES = [
    (params(source_type=""), "InvalidParam.ImageTypeEmpty", "The image type is empty.", 400),
    (
        {k: v for k, v in params().items() if k != "TargetImageType"},
        "InvalidParam.ImageTypeEmpty",
        "The image type is empty.",
        400,
    ),
    (params(target_type="Selfie"), "InvalidParam.ImageTypeInvalid", "The image type is not valid.", 400),
    (
        params("IDPic", FACE, "IDPic", FACE),
        "InvalidParam.FacePicNotGiven",
        "At least one of the two given images has a type of FacePic.",
        400,
    ),
    (params(target=""), "InvalidParam.ParamMissing", "Please check if there is param empty in your imput.", 403),
    (
        {k: v for k, v in params().items() if k != "SourceImageValue"},
        "InvalidParam.ParamMissing",
        "Please check if there is param empty in your imput.",
        403,
    ),
    (
        params(target="/etc/passwd"),
        "InvalidParam.ImageValuePatternError",
        "The pattern of value of given image is not acceptable.",
        400,
    ),
    (
        params(target="ftp://example.com/a.jpg"),
        "InvalidParam.ImageValuePatternError",
        "The pattern of value of given image is not acceptable.",
        400,
    ),
    (
        params(target="base64://%%%not base64%%%"),
        "InvalidParam.ImageValuePatternError",
        "The pattern of value of given image is not acceptable.",
        400,
    ),
    (
        params(target="oss://no-colon-here.jpg"),
        "InvalidParam.ImageValuePatternError",
        "The pattern of value of given image is not acceptable.",
        400,
    ),
    (
        params(target=b64(b"this is not an image at all")),
        "InvalidParam.ImageValuePatternError",
        "The pattern of value of given image is not acceptable.",
        400,
    ),
    (
        params(target=b64(encode(astronaut_face_crop())[:400])),
        "InvalidParam.ImageValuePatternError",
        "The pattern of value of given image is not acceptable.",
        400,
    ),
    (
        params(target="oss://my-bucket:missing/face.jpg"),
        "InvalidParam.ImageNotFound",
        "No images founded with given image address",
        400,
    ),
]


@pytest.mark.parametrize(("request_params", "code", "message", "status"), CASES)
def test_compare_faces_errors(
    gateway_client: httpx.Client, request_params: dict[str, str], code: str, message: str, status: int
) -> None:
    assert_error(compare(gateway_client, request_params), code, message, status)


def test_no_face_detected(client: httpx.Client) -> None:
    response = compare(client, params(target=BLANK))
    assert_error(response, "Error.NoFaceDetected", "No face detected from given images.", 400)


def test_error_in_xml(gateway_client: httpx.Client) -> None:
    client = gateway_client
    response = compare(client, {**params(source_type=""), "Format": "xml"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/xml;charset=utf-8"  # exactly: the Tea SDKs compare it
    root = ET.fromstring(response.text)
    assert root.tag == "Error"
    assert [child.tag for child in root] == ["RequestId", "HostId", "Code", "Message", "Recommend"]
    assert root.findtext("Code") == "InvalidParam.ImageTypeEmpty"


def test_gateway_errors(gateway_client: httpx.Client) -> None:
    client = gateway_client
    not_found = "Specified api is not found, please check your url and method."
    assert_error(
        client.get("/", params={"Action": "CompareFaces", "Version": "2019-03-07"}),
        "InvalidAction.NotFound",
        not_found,
        404,
    )
    assert_error(
        client.post("/", data={"Action": "DescribeVerifyToken", "Version": "2019-03-07"}),
        "InvalidAction.NotFound",
        not_found,
        404,
    )
    assert_error(
        client.post("/other", data={"Action": "CompareFaces", "Version": "2019-03-07"}),
        "InvalidAction.NotFound",
        not_found,
        404,
    )
    assert_error(
        client.post("/", data={"Action": "CompareFaces", "Version": "2017-11-17", **params()}),
        "InvalidVersion",
        "Specified parameter Version is not valid.",
        400,
    )
    response = client.post("/", data={"Version": "2019-03-07"})
    assert response.status_code == 400 and response.json()["Code"] == "MissingParameter"


def test_oss_local_object(client: httpx.Client, object_store_root: Path) -> None:
    (object_store_root / "my-bucket" / "faces").mkdir(parents=True, exist_ok=True)
    (object_store_root / "my-bucket" / "faces" / "a b~c*.jpg").write_bytes(encode(astronaut_face_crop()))
    response = compare(client, params(target="oss://my-bucket:faces/a b~c*.jpg"))
    assert response.status_code == 200, response.text
    assert response.json()["Data"]["SimilarityScore"] > 99
    (object_store_root / "other-bucket").mkdir(exist_ok=True)
    (object_store_root / "other-bucket" / "secret.jpg").write_bytes(encode(astronaut_face_crop()))
    escape = compare(client, params(target="oss://my-bucket:../other-bucket/secret.jpg"))
    assert escape.json()["Code"] == "InvalidParam.ImageNotFound"


def test_image_over_size_limit_is_refused(client: httpx.Client) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (1400, 1400, 3), dtype=np.uint8)
    big = encode(noise, ".png")
    assert len(big) > Settings().max_image_bytes
    assert_error(
        compare(client, params(target=b64(big))),
        "InvalidParam.ImageValuePatternError",
        "The pattern of value of given image is not acceptable.",
        400,
    )


def test_body_over_8_mb_is_refused_without_reading_it(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /?Action=CompareFaces&Version=2019-03-07 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 104857600\r\n\r\n" + b"A" * 65536
        )
        reply = ""
        while not reply.endswith("}"):  # answered long before 100 MB arrive
            reply += sock.recv(65536).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 400")
    assert "InvalidParam.ImageValuePatternError" in reply


def test_chunked_body_over_8_mb_is_refused(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(150):  # 9.8 MB
            yield b"A" * 65536

    response = client.post(
        "/",
        content=chunks(),
        params={"Action": "CompareFaces", "Version": "2019-03-07"},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["Code"] == "InvalidParam.ImageValuePatternError"


def test_decompression_bomb_is_refused(client: httpx.Client) -> None:
    # A PNG that declares 50,000 x 50,000 pixels but is tiny on the wire.
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )
    assert_error(
        compare(client, params(target=b64(bomb))),
        "InvalidParam.ImageValuePatternError",
        "The pattern of value of given image is not acceptable.",
        400,
    )


def test_tiny_image_has_no_face(client: httpx.Client) -> None:
    one_pixel = b64(encode(np.zeros((1, 1, 3), np.uint8), ".png"))
    response = compare(client, params(target=one_pixel))
    assert response.status_code == 400
    assert response.json()["Code"] in {"InvalidParam.ImageValuePatternError", "Error.NoFaceDetected"}


def test_error_body_names_the_host_called_and_no_server_header(server_settings: Settings) -> None:
    from tests.helpers.gateway import StandInComparisons
    from tests.helpers.server import run_server

    def stand_in(settings: Settings, _: object) -> StandInComparisons:
        return StandInComparisons(max_image_pixels=settings.max_image_pixels)

    with run_server(server_settings, comparisons_factory=stand_in) as url, httpx.Client(base_url=url) as client:
        response = compare(client, params(source_type=""))
        assert response.json()["HostId"] == url.removeprefix("http://")
        assert "server" not in response.headers  # Alibaba's gateway sends none; uvicorn would say its name
        renamed = client.post("/", data={**API, **params(source_type="")}, headers={"host": "cloudauth.aliyuncs.com"})
        assert renamed.json()["HostId"] == "cloudauth.aliyuncs.com"
