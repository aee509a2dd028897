"""The protocol's bookkeeping, without a socket: the head scan that bounds the header section before
h11 parses it, and the book of bytes held by incomplete heads and of idle connections."""

from __future__ import annotations

from typing import Any

import h11
import pytest

from app.api.protocol import CHUNK_ALLOWANCE, ConnectionBook, FramingConnection, HeadScan, ProtocolLimits
from app.settings import Settings


def scan(pieces: list[bytes]) -> tuple[HeadScan, list[tuple[int, bool]]]:
    head = HeadScan()
    return head, [head.feed(piece) for piece in pieces]


def test_head_scan_finds_the_end_of_the_head_across_reads_and_counts_only_the_head() -> None:
    body = b"a\nb\nc\n\n" * 100  # line feeds in the body are not header lines
    whole = b"POST /?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 700\r\n\r\n"
    for split in range(1, len(whole)):
        head, results = scan([whole[:split], whole[split:] + body])
        assert results[-1] == (len(whole) - split, True)
        assert head.header_lines(complete=True) == 2
        assert head.request_line == len(b"POST /?x=1 HTTP/1.1\r\n")
        assert head.header_bytes() == len(whole) - head.request_line


def test_head_scan_accepts_bare_line_feeds_as_h11_does() -> None:
    head, results = scan([b"GET / HTTP/1.1\nHost: a\n", b"\nrest"])
    assert results[-1] == (1, True) and head.header_lines(complete=True) == 1


def test_an_incomplete_head_counts_its_lines_and_bytes_so_far() -> None:
    head, results = scan([b"GET /" + b"q" * 10_000, b" HTTP/1.1\r\n" + b"a:b\r\n" * 1000])
    assert results == [(10_005, False), (11 + 5000, False)]
    assert head.header_lines(complete=False) == 1000 and head.header_bytes() == 5000


def limits(**overrides: Any) -> ProtocolLimits:
    values = dict(
        max_head_bytes=1000,
        max_header_lines=10,
        max_header_bytes=100,
        grace_s=1.0,
        min_rate=100.0,
        head_timeout_s=5.0,
        held_heads_bytes=1000,
        held_heads_bytes_per_client=400,
        min_chunk_bytes=64,
        max_idle=2,
    )
    return ProtocolLimits(**{**values, **overrides})


def test_the_book_bounds_held_head_bytes_per_client_and_in_all() -> None:
    book = ConnectionBook(limits())
    assert book.hold("a", 400) and not book.hold("a", 1)  # a's bound
    assert book.hold("b", 400) and book.hold("c", 200) and not book.hold("d", 1)  # the server's bound
    book.release("a", 400)
    assert book.hold("d", 300) and book.head_bytes == 900
    for client, size in (("b", 400), ("c", 200), ("d", 300)):
        book.release(client, size)
    assert book.head_bytes == 0 and book.head_bytes_by_client == {}


class Idle:
    def __init__(self) -> None:
        self.closed = False

    def timeout_keep_alive_handler(self) -> None:
        self.closed = True


def test_the_book_closes_the_oldest_idle_connection_past_its_bound() -> None:
    book = ConnectionBook(limits(max_idle=2))
    first, second, third = Idle(), Idle(), Idle()
    for connection in (first, second):
        book.now_idle(connection)  # type: ignore[arg-type]
    book.busy(first)  # type: ignore[arg-type]
    book.now_idle(first)  # type: ignore[arg-type]  # now the youngest
    book.now_idle(third)  # type: ignore[arg-type]
    assert (first.closed, second.closed, third.closed) == (False, True, False)


def events(connection: FramingConnection, data: bytes) -> list[Any]:
    connection.receive_data(data)
    out = []
    while (event := connection.next_event()) is not h11.NEED_DATA:
        out.append(event)
        if isinstance(event, h11.EndOfMessage):
            break
    return out


CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_chunks_must_average_the_minimum_size_after_the_allowance() -> None:
    connection = FramingConnection(10_000, min_chunk_bytes=64)
    events(connection, CHUNKED_HEAD + b"1\r\na\r\n" * CHUNK_ALLOWANCE)
    with pytest.raises(h11.RemoteProtocolError):
        events(connection, b"1\r\na\r\n")
    assert connection.refusal is not None and connection.refusal.code == "InvalidParam.ImageValuePatternError"
    healthy = FramingConnection(10_000, min_chunk_bytes=64)
    chunk = b"40\r\n" + b"a" * 64 + b"\r\n"
    assert isinstance(events(healthy, CHUNKED_HEAD + chunk * 100 + b"0\r\n\r\n")[-1], h11.EndOfMessage)


def test_transfer_encoding_with_content_length_is_a_framing_error() -> None:
    connection = FramingConnection(10_000, min_chunk_bytes=64)
    with pytest.raises(h11.RemoteProtocolError):
        events(connection, CHUNKED_HEAD.replace(b"Host: a", b"Host: a\r\nContent-Length: 5"))
    assert connection.refusal is None  # uvicorn's plain 400, as for other broken framing


def test_limits_come_from_the_settings() -> None:
    settings = Settings(max_body_bytes=1000, max_header_bytes=200)
    assert ProtocolLimits.of(settings).max_head_bytes == 1200
