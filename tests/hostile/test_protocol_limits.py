"""What a connection can make the server hold or do before the application sees a request: heads
have a time ceiling and their bytes a bound per server and per client address, header sections are
bounded before h11 parses them (pipelined ones too), bodies of tiny chunks and framing that decodes
to nothing are refused early, Transfer-Encoding with Content-Length is a framing error, and idle
kept-alive connections stay long enough for pooled clients yet bounded in number. Real server on
loopback (several 127.0.0.x source addresses stand for several clients), a stand-in comparison
service, bounded in count and time."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.helpers.gateway import StandInComparisons
from tests.helpers.server import run_server
from tests.hostile.rawhttp import RawResponse, answered_within, closed_by_peer, connect_from, read_response

PATTERN = "InvalidParam.ImageValuePatternError"
THROTTLED = "Throttling.User"


@contextmanager
def server(**settings: Any) -> Iterator[str]:
    with run_server(Settings(**settings), comparisons_factory=lambda _, __: StandInComparisons()) as url:
        yield url


def contract_error(response: RawResponse) -> tuple[int, str]:
    return response.status, response.json()["Code"]


def healthz_seconds(url: str) -> float:
    started = time.perf_counter()
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
    return time.perf_counter() - started


# Heads


def test_a_head_is_closed_at_its_time_ceiling_however_fast_its_bytes_come() -> None:
    with server(slow_client_grace_s=1.0, slow_client_min_rate=1000, head_read_timeout_s=2.0) as url:
        with connect_from(url) as sock:
            sock.sendall(b"POST /?SourceImageValue=")
            started = time.monotonic()
            closed_after = None
            while time.monotonic() - started < 6:
                try:
                    sock.sendall(b"A" * 2000)  # 10 KB/s: ten times the minimum rate
                except OSError:
                    closed_after = time.monotonic() - started
                    break
                if answered_within(sock, 0.2):  # closed
                    closed_after = time.monotonic() - started
                    break
        assert closed_after is not None and 1.5 < closed_after < 3.5, closed_after


PARTIAL_HEAD = b"POST /?SourceImageValue=" + b"A" * 700_000  # images in the query string, not done yet


def test_incomplete_heads_hold_a_bounded_number_of_bytes_per_client_and_in_all() -> None:
    settings = dict(
        incomplete_heads_max_bytes=3_000_000,
        incomplete_heads_max_bytes_per_client=1_000_000,
        slow_client_grace_s=30.0,
    )
    with server(**settings) as url, ExitStack() as stack:

        def partial(source: str) -> socket.socket:
            sock = stack.enter_context(connect_from(url, source))
            sock.sendall(PARTIAL_HEAD)
            time.sleep(0.3)  # read by the server before the next one
            return sock

        first = partial("127.0.0.2")
        second_of_the_same_client = partial("127.0.0.2")
        assert contract_error(read_response(second_of_the_same_client)) == (429, THROTTLED)
        second_of_the_same_client.close()  # what it had sent before its refusal is held until then
        held = [partial(f"127.0.0.{n}") for n in (3, 4, 5)]  # 4 x 700 KB held: 2.8 MB
        over_the_total = partial("127.0.0.6")
        assert contract_error(read_response(over_the_total)) == (429, THROTTLED)
        assert not any(answered_within(sock, 0.1) for sock in [first, *held])  # still receiving
        assert healthz_seconds(url) < 2.0  # a complete head holds nothing: served
        first.close()
        time.sleep(0.3)
        assert not answered_within(partial("127.0.0.2"), 0.5)  # its client's bytes were given back


def test_header_lines_are_bounded_before_the_head_is_parsed() -> None:
    with server() as url:
        for count, refused in ((99, False), (100, True)):
            with connect_from(url) as sock:
                pad = b"".join(b"x-pad-%d: 1\r\n" % n for n in range(count))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n")
                response = read_response(sock)
                assert (response.status == 400) is refused
                if refused:
                    assert contract_error(response) == (400, PATTERN)
        with connect_from(url) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nx-big: " + b"b" * 70_000 + b"\r\n\r\n")
            assert contract_error(read_response(sock)) == (400, PATTERN)
        with connect_from(url) as sock:  # the request line may stay long: images in the query string
            sock.sendall(b"GET /healthz?SourceImageValue=" + b"A" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).status == 200


def test_a_flood_of_tiny_headers_is_refused_without_blocking_the_server() -> None:
    flood = b"POST / HTTP/1.1\r\n" + b"a:b\r\n" * 1_600_000 + b"\r\n"  # 8 MB, 1.6 M lines
    with server() as url, connect_from(url) as sock:
        sender = threading.Thread(target=lambda: _send_ignoring_close(sock, flood), daemon=True)
        started = time.monotonic()
        sender.start()
        assert contract_error(read_response(sock)) == (400, PATTERN)
        answered = time.monotonic() - started
        assert healthz_seconds(url) < 1.0
        sender.join(15)
    assert answered < 2.0, answered


def _send_ignoring_close(sock: socket.socket, data: bytes) -> None:
    with suppress(OSError):
        sock.sendall(data)


def test_a_pipelined_head_is_bounded_like_the_first() -> None:
    first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    second = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"a:b\r\n" * 50_000 + b"\r\n"
    with server() as url, connect_from(url) as sock:
        sock.sendall(first + second)
        answers = b""
        while chunk := sock.recv(65536):
            answers += chunk
        assert answers.startswith(b"HTTP/1.1 200 ") and answers.count(b"HTTP/1.1 ") == 2
        assert b"HTTP/1.1 400 " in answers and PATTERN.encode() in answers


# Chunked bodies and framing

CHUNKED = (
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"1\r\na\r\n" * 100_000, id="1-byte chunks"),
        pytest.param((b"60\r\n" + b"a" * 96 + b"\r\n") * 2000, id="96-byte chunks"),  # few line feeds, too many chunks
        pytest.param((b"1;" + b"e" * 200_000 + b"\r\na\r\n") * 5, id="chunk extensions"),
        pytest.param(b"1\r\na\r\n0\r\n" + b"t:1\r\n" * 100_000 + b"\r\n", id="a trailer flood"),
    ],
)
def test_chunked_bodies_that_cost_more_than_they_carry_are_refused_early(body: bytes) -> None:
    with server() as url, connect_from(url) as sock:
        sender = threading.Thread(target=lambda: _send_ignoring_close(sock, CHUNKED + body), daemon=True)
        sender.start()
        assert contract_error(read_response(sock)) == (400, PATTERN)
        assert closed_by_peer(sock, 12.0)
        sender.join(15)


def test_chunked_bodies_of_sane_chunks_are_received() -> None:
    with server() as url, httpx.Client(base_url=url, timeout=30) as client:
        form = b"Action=CompareFaces&Version=2019-03-07&" + b"x=" + b"a" * 200_000
        pieces = [form[at : at + 1500] for at in range(0, len(form), 1500)]  # what a network path delivers
        response = client.post("/", content=iter(pieces), headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.json()["Code"] == "InvalidParam.ImageTypeEmpty"  # received and parsed: no image given


def test_transfer_encoding_with_content_length_is_answered_400_and_closed() -> None:
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    with server() as url, connect_from(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).status == 200  # on a kept-alive connection as on a new one
        sock.sendall(head % len(body) + body)
        response = read_response(sock)
        assert response.status == 400 and response.headers.get("connection") == "close"
        assert response.headers["content-type"].startswith("text/plain")  # as uvicorn answers broken framing
        assert closed_by_peer(sock, 5.0)  # the smuggled request is never answered


# Keep-alive


def test_a_pooled_client_reuses_its_connection_after_more_than_five_idle_seconds() -> None:
    with server() as url:
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)  # one pooled connection, no retry
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() and connection.sock is not None
        first_socket = connection.sock
        time.sleep(6.0)  # past uvicorn's default of 5 s
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        assert connection.sock is first_socket  # the same connection, kept by the server
        connection.close()


def test_idle_connections_close_after_the_keep_alive_timeout_and_are_bounded_in_number() -> None:
    with server(keep_alive_timeout_s=1.5, max_idle_connections=3) as url, ExitStack() as stack:
        sockets = []
        for _ in range(5):
            sock = stack.enter_context(connect_from(url))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).status == 200
            sockets.append(sock)
            time.sleep(0.05)
        oldest, kept = sockets[:2], sockets[2:]
        assert all(closed_by_peer(sock, 0.5) for sock in oldest)  # past the bound: the oldest idle ones
        assert not any(closed_by_peer(sock, 0.1) for sock in kept)
        time.sleep(1.5)
        assert all(closed_by_peer(sock, 1.0) for sock in kept)  # the timeout
