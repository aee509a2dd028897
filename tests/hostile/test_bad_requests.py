"""Hostile requests over real sockets: huge and duplicated forms, invalid UTF-8, odd headers,
slow-drip and abandoned bodies. Every request that reaches the application gets a spec error
(4xx, Alibaba error body); bytes that are not HTTP at all get uvicorn's plain 400. Never a 5xx,
never a hang, never a traceback in the log."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from app.settings import Settings
from tests.conftest import API, compare
from tests.helpers.images import b64
from tests.helpers.server import run_server
from tests.hostile.hostile_images import face_jpeg
from tests.hostile.rawhttp import closed_by_peer, connect, exchange, post, read_response

FACE = b64(face_jpeg())
GOOD = {
    **API,
    "SourceImageType": "FacePic",
    "SourceImageValue": FACE,
    "TargetImageType": "FacePic",
    "TargetImageValue": FACE,
}
PATTERN = "InvalidParam.ImageValuePatternError"
TARGET = b"/?Action=CompareFaces&Version=2019-03-07"


def form(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode()


def spec_error(status: int, body: dict[str, str], code: str | None = None) -> None:
    assert 400 <= status < 500, body
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    if code is not None:
        assert body["Code"] == code, body


@pytest.fixture()
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test if the server logged an error (a failed request) meanwhile."""
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage()[:300] for r in errors]


# Forms


def test_thousands_of_fields_in_the_body(server: str, no_tracebacks: None) -> None:
    body = form([(f"f{i}", "x") for i in range(5000)] + list(GOOD.items()))
    response = post(server, b"/", body)
    spec_error(response.status, response.json(), PATTERN)


def test_thousands_of_fields_in_the_query_string(server: str, no_tracebacks: None) -> None:
    # 10,005 empty fields: used to crash the Format pre-check with a plain-text 500.
    for query in (b"/?" + b"&" * 10_004, b"/?Format=XML&" + b"a=1&" * 3000):
        response = post(server, query, form(list(GOOD.items())))
        spec_error(response.status, response.json(), PATTERN)


def test_just_under_the_field_limit_still_works(gateway_client: httpx.Client) -> None:
    client = gateway_client
    pairs = [(f"f{i}", "x") for i in range(990)] + list(GOOD.items())
    response = client.post("/", content=form(pairs), headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text


def test_duplicated_keys_last_one_wins(gateway_client: httpx.Client) -> None:
    client = gateway_client
    pairs = list(GOOD.items()) + [("TargetImageType", "Selfie")]
    response = client.post("/", content=form(pairs), headers={"content-type": "application/x-www-form-urlencoded"})
    spec_error(response.status_code, response.json(), "InvalidParam.ImageTypeInvalid")
    pairs = [("TargetImageType", "Selfie"), *GOOD.items()]
    response = client.post("/", content=form(pairs), headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    pairs = list(GOOD.items()) + [("Version", "2017-01-01")]
    response = client.post("/", content=form(pairs), headers={"content-type": "application/x-www-form-urlencoded"})
    spec_error(response.status_code, response.json(), "InvalidVersion")


def test_the_same_key_thousands_of_times(server: str, no_tracebacks: None) -> None:
    body = form([("SourceImageValue", "x")] * 3000 + list(GOOD.items()))
    response = post(server, b"/", body)
    spec_error(response.status, response.json(), PATTERN)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            b"SourceImageType=\xff\xfe&TargetImageType=FacePic&SourceImageValue=x&TargetImageValue=y",
            "InvalidParam.ImageTypeInvalid",
        ),
        (
            b"SourceImageType=%ff%fe&TargetImageType=FacePic&SourceImageValue=x&TargetImageValue=y",
            "InvalidParam.ImageTypeInvalid",
        ),
        (
            b"SourceImageType=FacePic&TargetImageType=FacePic&SourceImageValue=base64://%ff%c3%28&TargetImageValue=y",
            PATTERN,
        ),
        (
            b"SourceImageType=FacePic&TargetImageType=FacePic&SourceImageValue=base64://\xc3\x28\xa0\xa1&"
            b"TargetImageValue=y",
            PATTERN,
        ),
        (b"\xff\xfe\xfd=1&" + b"SourceImageType=FacePic&TargetImageType=FacePic", "InvalidParam.ParamMissing"),
        (
            b"SourceImageType=FacePic%00&TargetImageType=FacePic&SourceImageValue=x&TargetImageValue=y",
            "InvalidParam.ImageTypeInvalid",
        ),
        (
            b"\xef\xbb\xbfSourceImageType=FacePic&TargetImageType=IDPic&SourceImageValue=x&TargetImageValue=y",
            "InvalidParam.ImageTypeEmpty",
        ),
        (b"%%%%&&&===&=&a=%zz%", "InvalidParam.ImageTypeEmpty"),
    ],
    ids=[
        "raw-invalid-utf8",
        "percent-invalid-utf8",
        "percent-invalid-utf8-in-value",
        "raw-invalid-utf8-in-value",
        "invalid-utf8-key",
        "nul-in-value",
        "utf8-bom",
        "broken-percent-escapes",
    ],
)
def test_invalid_utf8_and_broken_encoding(server: str, body: bytes, code: str, no_tracebacks: None) -> None:
    response = post(server, TARGET, body)
    spec_error(response.status, response.json(), code)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /?Action=Compare%ffFaces&Version=2019-03-07 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nx-acs-action: \xff\xfe\r\nx-acs-version: \xc3\x28\r\nContent-Length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded; charset=\xff\r\n"
        b"Content-Length: 3\r\n\r\na=b",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 9\r\n"
        b"\r\n--x--\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n[[[[",
        b"POST / HTTP/1.1\r\nHost: x\r\nx-acs-action: CompareFaces\r\nx-acs-version: 2019-03-07\r\n"
        b"Content-Length: 0\r\n\r\n",
        b"POST /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"DELETE / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nAAAAA",
    ],
    ids=[
        "invalid-utf8-in-query",
        "invalid-utf8-headers",
        "bad-charset",
        "multipart",
        "json",
        "header-only-action",
        "long-path",
        "delete",
    ],
)
def test_odd_requests_get_spec_errors(server: str, request_bytes: bytes, no_tracebacks: None) -> None:
    response = exchange(server, request_bytes.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
    spec_error(response.status, response.json())


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nAAAAAA",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nAAA\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\n" + b"X: y\r\n" * 20_000 + b"\r\n",
    ],
    ids=["not-http", "two-lengths", "bad-chunk-size", "negative-length", "huge-header", "many-headers"],
)
def test_protocol_errors_get_plain_400(server: str, request_bytes: bytes, no_tracebacks: None) -> None:
    response = exchange(server, request_bytes)
    assert response.status == 400


# Bodies that come slowly, or never


@pytest.fixture(scope="module")
def tight_server(server_settings: Settings) -> Iterator[str]:
    settings = server_settings.model_copy(update={"body_read_timeout_s": 2.0, "max_open_requests": 4})
    with run_server(settings) as base_url:
        yield base_url


def drip(sock: socket.socket, stop: threading.Event, interval_s: float = 0.2) -> None:
    try:
        while not stop.wait(interval_s):
            sock.sendall(b"A")
    except OSError:
        pass


def test_slow_drip_body_is_cut_off(tight_server: str, no_tracebacks: None) -> None:
    with connect(tight_server) as sock:
        sock.sendall(b"POST " + TARGET + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        stop = threading.Event()
        dripper = threading.Thread(target=drip, args=(sock, stop), daemon=True)
        started = time.monotonic()
        dripper.start()
        try:
            response = read_response(sock)
            elapsed = time.monotonic() - started
            assert closed_by_peer(sock, 5)
        finally:
            stop.set()
            dripper.join()
    spec_error(response.status, response.json(), PATTERN)
    assert 1.5 < elapsed < 10


def test_slow_drip_chunked_body_is_cut_off(tight_server: str) -> None:
    with connect(tight_server) as sock:
        sock.sendall(b"POST " + TARGET + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        started = time.monotonic()
        for _ in range(3):
            sock.sendall(b"1\r\nA\r\n")
            time.sleep(0.2)
        response = read_response(sock)
    assert response.status == 400
    assert 1.5 < time.monotonic() - started < 10


def test_abandoned_bodies_cost_nothing(tight_server: str, no_tracebacks: None) -> None:
    """Clients that announce a body and leave, half-way or at once: no error logged, server fine."""
    for sent in (b"", b"Source", b"A" * 5000):
        with connect(tight_server) as sock:
            sock.sendall(b"POST " + TARGET + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + sent)
        with connect(tight_server) as sock:
            sock.sendall(b"POST " + TARGET + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + sent)
            sock.shutdown(socket.SHUT_WR)
            time.sleep(0.05)
    time.sleep(0.3)
    with httpx.Client(base_url=tight_server, timeout=30) as client:
        assert compare(client, {k: v for k, v in GOOD.items() if k not in API}).status_code == 200


def test_open_requests_are_bounded(tight_server: str) -> None:
    """Past max_open_requests (4) slow senders, the next request is throttled without being read;
    once they are cut off, requests are served again."""
    socks = []
    try:
        for _ in range(4):
            sock = connect(tight_server)
            sock.sendall(b"POST " + TARGET + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nA")
            socks.append(sock)
        time.sleep(0.3)
        response = post(tight_server, TARGET, form(list(GOOD.items())))
        spec_error(response.status, response.json(), "Throttling.User")
        assert response.status == 429
        assert int(response.headers["x-acs-retry-after"]) > 0
        for sock in socks:
            assert read_response(sock).status == 400  # cut off at the body deadline
    finally:
        for sock in socks:
            sock.close()
    with httpx.Client(base_url=tight_server, timeout=30) as client:
        assert compare(client, {k: v for k, v in GOOD.items() if k not in API}).status_code == 200
