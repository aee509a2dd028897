"""Hostile images over HTTP: every one gets a spec error with a 4xx status (or, when it is an odd
but valid picture of a face, a comparison), never a 500 or a hang; the server stays healthy."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from tests.conftest import compare
from tests.helpers.images import astronaut_face_crop, b64, encode
from tests.hostile.hostile_images import (
    animated,
    bmp_declaring,
    corrupted,
    exif_ifd,
    face_jpeg,
    face_png,
    face_rgb,
    flip_png_idat,
    jpeg_declaring,
    jpeg_with_app1,
    pil_bytes,
    png_declaring,
    truncated,
    webp_declaring,
)

PATTERN = "InvalidParam.ImageValuePatternError"
NO_FACE = "Error.NoFaceDetected"
OK = "1"
SPEC_4XX = {
    "InvalidParam.ImageTypeEmpty",
    "InvalidParam.ImageTypeInvalid",
    "InvalidParam.FacePicNotGiven",
    "InvalidParam.ParamMissing",
    PATTERN,
    "InvalidParam.ImageNotFound",
    NO_FACE,
    "MissingParameter",
    "InvalidVersion",
    "InvalidAction.NotFound",
    "Throttling.User",
}

TINY = np.full((1, 1, 3), 128, np.uint8)
FACE = face_jpeg()

# (case id, raw image value sent as TargetImageValue, expected codes)
VALUES: list[tuple[str, str, set[str]]] = [
    ("empty-base64", "base64://", {"InvalidParam.ParamMissing", PATTERN}),
    ("zero-bytes-data-url", "base64://data:image/jpeg;base64,", {PATTERN}),
    ("one-char", "base64://A", {PATTERN}),
    ("bad-alphabet", "base64://ab!d", {PATTERN}),
    ("url-safe-alphabet", "base64://" + base64.urlsafe_b64encode(FACE).decode(), {PATTERN}),
    ("only-padding", "base64://====", {PATTERN}),
    ("padding-inside", "base64://QUJD=QUJD", {PATTERN}),
    ("non-ascii", "base64://顔写真", {PATTERN}),
    ("nul-bytes", "base64://\x00\x00\x00\x00", {PATTERN}),
    ("base64-of-nothing-useful", "base64://AAAA", {PATTERN}),
    ("double-encoded", "base64://" + base64.b64encode(b64(FACE).encode()).decode(), {PATTERN}),
    ("no-scheme", base64.b64encode(FACE).decode(), {PATTERN}),
    ("file-url", "file:///etc/passwd", {PATTERN}),
    ("local-path", "/etc/passwd", {PATTERN}),
]

# (case id, image bytes sent base64-encoded, expected codes)
IMAGES: list[tuple[str, bytes, set[str]]] = [
    ("text", b"hello, this is not an image", {PATTERN}),
    ("html", b"<html><body><img src=x></body></html>", {PATTERN}),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="50000" height="50000"/>', {PATTERN}),
    ("pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", {PATTERN}),
    ("gif", pil_bytes(face_rgb(), "GIF"), {PATTERN}),
    ("tiff", pil_bytes(face_rgb(), "TIFF"), {PATTERN}),
    ("ico", pil_bytes(face_rgb().resize((64, 64)), "ICO"), {PATTERN}),
    ("jpeg-magic-only", b"\xff\xd8\xff", {PATTERN}),
    ("png-magic-only", b"\x89PNG\r\n\x1a\n", {PATTERN}),
    ("bmp-magic-only", b"BM", {PATTERN}),
    ("webp-magic-only", b"RIFF\x00\x00\x00\x00WEBP", {PATTERN}),
    ("jpeg-truncated-10%", truncated(FACE, 0.1), {PATTERN}),
    ("jpeg-truncated-50%", truncated(FACE, 0.5), {PATTERN, NO_FACE, OK}),
    ("jpeg-truncated-95%", truncated(FACE, 0.95), {PATTERN, NO_FACE, OK}),
    ("jpeg-no-eoi", FACE[:-2], {PATTERN}),  # OpenCV refuses JPEGs that end early
    ("jpeg-corrupt-scan", corrupted(FACE, 700), {PATTERN, NO_FACE, OK}),
    ("png-truncated-50%", truncated(face_png(), 0.5), {PATTERN, NO_FACE, OK}),
    ("png-truncated-header", truncated(face_png(), 0.01), {PATTERN}),
    ("png-idat-bit-flip", flip_png_idat(face_png()), {PATTERN, NO_FACE, OK}),
    ("png-corrupt-data", corrupted(face_png(), 100), {PATTERN, NO_FACE}),
    ("png-1x1", encode(TINY, ".png"), {PATTERN}),
    ("jpeg-1x1", encode(TINY), {PATTERN}),
    ("bmp-1x1", encode(TINY, ".bmp"), {PATTERN}),
    ("webp-1x1", encode(TINY, ".webp"), {PATTERN}),
    ("png-1x50000", encode(np.zeros((1, 50_000, 3), np.uint8), ".png"), {PATTERN}),
    ("png-declares-50000x50000", png_declaring(50_000, 50_000), {PATTERN}),
    ("png-declares-50000x50000-16bit", png_declaring(50_000, 50_000, bit_depth=16), {PATTERN}),
    ("png-declares-2^31", png_declaring(2**31 - 1, 2**31 - 1), {PATTERN}),
    ("png-declares-zero", png_declaring(0, 0), {PATTERN}),
    ("jpeg-declares-50000x50000", jpeg_declaring(50_000, 50_000), {PATTERN}),
    ("jpeg-declares-65535x65535", jpeg_declaring(65_535, 65_535), {PATTERN}),
    ("jpeg-declares-zero", jpeg_declaring(0, 0), {PATTERN}),
    ("bmp-declares-50000x50000", bmp_declaring(50_000, 50_000), {PATTERN}),
    ("bmp-declares-negative", bmp_declaring(-50_000, -50_000), {PATTERN}),
    ("webp-declares-16384x16384", webp_declaring(16_384, 16_384), {PATTERN}),
    ("gif-animated", animated("GIF", face_rgb()), {PATTERN}),
    ("webp-animated", animated("WEBP", face_rgb()), {OK}),  # the first frame is used
    ("png-animated", animated("PNG", face_rgb()), {OK}),  # APNG: the default image is used
    ("png-16-bit", encode(astronaut_face_crop().astype(np.uint16) * 257, ".png"), {OK}),
    ("png-grey-alpha", pil_bytes(face_rgb().convert("LA"), "PNG"), {OK}),
    ("png-palette", pil_bytes(face_rgb().convert("P"), "PNG"), {OK}),
    ("jpeg-cmyk", pil_bytes(face_rgb().convert("CMYK"), "JPEG"), {OK}),
    ("jpeg-grey", pil_bytes(face_rgb().convert("L"), "JPEG"), {OK}),
    ("jpeg-progressive", pil_bytes(face_rgb(), "JPEG", progressive=True), {OK}),
    ("jpeg-exif-64k", pil_bytes(face_rgb(), "JPEG", exif=b"Exif\x00\x00" + b"\x00" * 65_000), {OK}),
    ("jpeg-exif-1.5mb", jpeg_with_app1([b"Exif\x00\x00" + b"\xaa" * 65_000] * 24), {OK}),
    ("jpeg-exif-bad-orientation", jpeg_with_app1([exif_ifd([(0x0112, 3, 1, 9)])]), {OK}),
    ("jpeg-exif-ifd-loop", jpeg_with_app1([exif_ifd([(0x0112, 3, 1, 6)], next_ifd=8)]), {OK}),
    ("jpeg-exif-huge-count", jpeg_with_app1([exif_ifd([(0x010F, 2, 0xFFFFFFFF, 8)])]), {OK}),
    ("jpeg-exif-offset-past-end", jpeg_with_app1([exif_ifd([(0x8769, 4, 1, 0x7FFFFFFF)])]), {OK}),
    ("polyglot-bmp-magic-jpeg-body", b"BM" + FACE, {PATTERN}),
    ("polyglot-jpeg-then-zip", FACE + b"PK\x03\x04" + b"\x00" * 1000, {OK}),
]


def check(response: httpx.Response, expected: set[str]) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    assert body["RequestId"] == response.headers["x-acs-request-id"]
    if response.status_code == 200:
        assert OK in expected, f"expected {expected}, got a comparison"
        assert 0 <= body["Data"]["SimilarityScore"] <= 100
    else:
        assert 400 <= response.status_code < 500
        assert body["Code"] in SPEC_4XX
        assert body["Code"] in expected, body


def request(target: str, source_type: str = "FacePic") -> dict[str, str]:
    return {
        "SourceImageType": source_type,
        "SourceImageValue": b64(FACE),
        "TargetImageType": "FacePic",
        "TargetImageValue": target,
    }


@pytest.mark.parametrize(("value", "expected"), [case[1:] for case in VALUES], ids=[case[0] for case in VALUES])
def test_bad_image_values(client: httpx.Client, value: str, expected: set[str]) -> None:
    check(compare(client, request(value)), expected)


@pytest.mark.parametrize(("image", "expected"), [case[1:] for case in IMAGES], ids=[case[0] for case in IMAGES])
def test_hostile_images(client: httpx.Client, image: bytes, expected: set[str]) -> None:
    check(compare(client, request(b64(image))), expected)


def test_hostile_image_as_id_portrait_and_in_xml(client: httpx.Client) -> None:
    response = compare(client, {**request(b64(png_declaring(50_000, 50_000)), "IDPic"), "Format": "XML"})
    assert response.status_code == 400
    assert "<Code>InvalidParam.ImageValuePatternError</Code>" in response.text


def test_server_still_healthy(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert compare(client, request(b64(FACE))).json()["Data"]["SimilarityScore"] > 99
