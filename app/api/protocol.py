"""HTTP/1.1 for uvicorn: one protocol class that bounds what a connection can make the server hold
or do before the application sees a request, and answers in the contract's error body where it can.

* Heads. Some clients put both base64 images in the query string (pop-core up to 1.5, the core SDK's
  ``CommonRequest.add_query_param``, Tea ``call_api`` with ``query=``), so a head may be as large as
  a body (``max_body_bytes``) plus the header section. The header section (after the request line)
  is bounded in lines and bytes, counted as the bytes arrive (``bytes.count``/``find``, C speed)
  before h11 parses anything. A head must keep arriving at ``min_rate`` after ``grace_s`` and be
  complete within ``head_timeout_s`` whatever its size; a connection that falls behind is closed.
* Memory. The bytes of incomplete heads are counted for the whole server and per client address
  (``ConnectionBook``); a head whose next bytes would pass either bound is answered
  ``Throttling.User`` and its connection closed.
* Chunked bodies. h11 and uvicorn handle each chunk as an event on the event loop, so a body of
  1-byte chunks costs a lot while passing every byte-rate rule: past ``CHUNK_ALLOWANCE`` chunks the
  decoded bytes must average ``min_chunk_bytes`` a chunk, and the wire bytes that decode to nothing
  (chunk headers, extensions, trailers) stay under the header-section bound plus 1/16 of the body.
* Framing. A request with both ``Transfer-Encoding`` and ``Content-Length`` is answered uvicorn's
  plain 400, as other malformed framing is, and the connection closed (RFC 9112 section 6.3).
* Keep-alive. Idle connections between requests are kept ``timeout_keep_alive`` seconds (uvicorn's
  own timer, set from the settings), at most ``max_idle`` of them: past that the oldest is closed.

A refused head or body is answered, half-closed and read (discarded) up to the head limit more for
up to ``DRAIN_TIMEOUT_S``, so that a client that is still sending reads the answer rather than a reset.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.api.intake import rate_deadline, throttled
from app.errors import ApiError, ImageValuePatternError
from app.settings import Settings
from app.wire.responses import error_response

DRAIN_TIMEOUT_S = 10.0
CHUNK_ALLOWANCE = 16  # chunks any body may have before the average size counts
OVERHEAD_SHARE = 16  # chunked framing may add 1/16 of the decoded bytes (plus the header-section bound)


def max_head_bytes(settings: Settings) -> int:
    """Request line (images in the query string) and header section together."""
    return settings.max_body_bytes + settings.max_header_bytes


@dataclass(frozen=True)
class ProtocolLimits:
    max_head_bytes: int
    max_header_lines: int
    max_header_bytes: int
    grace_s: float
    min_rate: float
    head_timeout_s: float
    held_heads_bytes: int  # all connections' incomplete heads together
    held_heads_bytes_per_client: int
    min_chunk_bytes: int
    max_idle: int

    @classmethod
    def of(cls, settings: Settings) -> ProtocolLimits:
        return cls(
            max_head_bytes=max_head_bytes(settings),
            max_header_lines=settings.max_header_lines,
            max_header_bytes=settings.max_header_bytes,
            grace_s=settings.slow_client_grace_s,
            min_rate=settings.slow_client_min_rate,
            head_timeout_s=settings.head_read_timeout_s,
            held_heads_bytes=settings.incomplete_heads_max_bytes,
            held_heads_bytes_per_client=settings.incomplete_heads_max_bytes_per_client,
            min_chunk_bytes=settings.min_chunk_bytes,
            max_idle=settings.max_idle_connections,
        )


@dataclass
class ConnectionBook:
    """What the connections of one server hold together (event loop only: no lock)."""

    limits: ProtocolLimits
    head_bytes: int = 0
    head_bytes_by_client: dict[str, int] = field(default_factory=dict)
    idle: OrderedDict[ServerProtocol, None] = field(default_factory=OrderedDict)

    def hold(self, client: str, size: int) -> bool:
        """Count ``size`` more bytes of incomplete heads from ``client``; False (nothing counted) past a bound."""
        by_client = self.head_bytes_by_client.get(client, 0) + size
        if self.head_bytes + size > self.limits.held_heads_bytes or by_client > self.limits.held_heads_bytes_per_client:
            return False
        self.head_bytes += size
        self.head_bytes_by_client[client] = by_client
        return True

    def release(self, client: str, size: int) -> None:
        if not size:
            return
        self.head_bytes -= size
        left = self.head_bytes_by_client.get(client, 0) - size
        if left > 0:
            self.head_bytes_by_client[client] = left
        else:
            self.head_bytes_by_client.pop(client, None)

    def now_idle(self, connection: ServerProtocol) -> None:
        self.idle[connection] = None
        while len(self.idle) > self.limits.max_idle:
            oldest, _ = self.idle.popitem(last=False)
            oldest.timeout_keep_alive_handler()  # as uvicorn closes one whose keep-alive ran out

    def busy(self, connection: ServerProtocol) -> None:
        self.idle.pop(connection, None)


@dataclass
class HeadScan:
    """Counts of one request head so far, from its bytes as they arrive (h11 parses it only once it is whole)."""

    size: int = 0
    request_line: int = -1  # bytes up to the first line feed; -1: not seen yet
    line_feeds: int = 0
    tail: bytes = b""  # the last bytes seen, for a blank line split across reads

    def feed(self, data: bytes) -> tuple[int, bool]:
        """(how many bytes of ``data`` belong to the head, whether the head ends in them)."""
        window = self.tail + data
        ends = [at + len(blank) for blank in (b"\n\n", b"\n\r\n") if (at := window.find(blank)) >= 0]
        complete = bool(ends)
        cut = max(0, min(ends) - len(self.tail)) if complete else len(data)
        part = data[:cut] if cut < len(data) else data
        if self.request_line < 0 and (at := part.find(b"\n")) >= 0:
            self.request_line = self.size + at + 1
        self.line_feeds += part.count(b"\n")
        self.size += len(part)
        self.tail = window[-2:]
        return cut, complete

    def header_lines(self, complete: bool) -> int:
        return max(0, self.line_feeds - 1 - complete)

    def header_bytes(self) -> int:
        return self.size - self.request_line if self.request_line >= 0 else 0


class FramingConnection(h11.Connection):
    """h11's server connection with the framing rules h11 leaves to the application: no request
    with both ``Transfer-Encoding`` and ``Content-Length``, and chunks of a sane average size."""

    def __init__(self, max_incomplete_event_size: int, min_chunk_bytes: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)
        self.min_chunk_bytes = max(1, min_chunk_bytes)
        self.refusal: ApiError | None = None  # set when a RemoteProtocolError of ours is answered in the contract
        self.chunked = False
        self.chunks = 0
        self.decoded = 0

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            names = {name for name, _ in event.headers}
            self.chunked, self.chunks, self.decoded = b"transfer-encoding" in names, 0, 0
            if self.chunked and b"content-length" in names:
                raise h11.RemoteProtocolError("Transfer-Encoding with Content-Length")
        elif isinstance(event, h11.Data):
            self.decoded += len(event.data)
            if event.chunk_start:
                self.chunks += 1
                if self.chunks > CHUNK_ALLOWANCE + self.decoded // self.min_chunk_bytes:
                    self.refusal = ImageValuePatternError()
                    raise h11.RemoteProtocolError("chunks too small")
        return event


class ServerProtocol(H11Protocol):
    """uvicorn's h11 protocol with the rules of the module docstring. ``uvicorn_http_options`` makes
    one subclass per server, holding that server's limits and book."""

    limits: ClassVar[ProtocolLimits]
    book: ClassVar[ConnectionBook]
    conn: FramingConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = FramingConnection(self.limits.max_head_bytes, self.limits.min_chunk_bytes)
        self._head = HeadScan()
        self._held = 0  # bytes of the current incomplete head counted in the book
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started = 0.0
        self._body_wire = 0  # bytes of a chunked body as sent
        self._body_line_feeds = 0
        self._draining = False
        self._drain_left = 0

    @property
    def _address(self) -> str:
        return self.client[0] if self.client else ""

    # the head deadline

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        limits = self.limits
        deadline = rate_deadline(
            self._head_started, self._head.size, grace_s=limits.grace_s, min_rate=limits.min_rate, max_s=None
        )
        deadline = min(deadline, self._head_started + limits.head_timeout_s)
        self._head_timer = self.loop.call_later(max(0.0, deadline - time.monotonic()), self._head_too_slow)

    def _head_done(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.book.release(self._address, self._held)
        self._held = 0
        self._head = HeadScan()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._waiting_for_head() and not self.transport.is_closing():
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_started = time.monotonic()
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._draining:
            self._drain_left -= len(data)
            if self._drain_left <= 0:
                self.transport.close()
            return
        self.book.busy(self)
        if self.conn.their_state is h11.IDLE:
            cut = self._scan_head(data)
            if cut is None:
                return
            if cut < len(data):  # the head ends here: h11 parses it first, so that the body after it is checked
                self._feed(data[:cut])
                if not (self._draining or self.transport.is_closing()):
                    self.data_received(data[cut:])
                return
        elif self.conn.their_state is h11.SEND_BODY and self.conn.chunked and not self._chunks_fit(data):
            self.refuse(ImageValuePatternError(), drain=False)
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        super().data_received(data)  # h11 parses, uvicorn handles the events
        self._after_events()

    def _after_events(self) -> None:
        if self.conn.their_state is not h11.IDLE and self._head.size:
            self._head_done()
        if not self._waiting_for_head() and self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _scan_head(self, data: bytes) -> int | None:
        """Count ``data`` into the current head: how many of its bytes are head, or None when refused."""
        if self._head_timer is None:  # the first bytes of a next head on a kept-alive connection
            self._head_started = time.monotonic()
        if self._head.size == 0:
            self._body_wire = self._body_line_feeds = 0
        cut, complete = self._head.feed(data)
        limits = self.limits
        if (
            self._head.size > limits.max_head_bytes
            or self._head.header_lines(complete) > limits.max_header_lines
            or self._head.header_bytes() > limits.max_header_bytes
        ):
            self.logger.warning("request head over the limits refused")
            self.refuse(ImageValuePatternError())
            return None
        if not complete:  # a complete head is parsed at once: nothing of it stays held
            if not self.book.hold(self._address, cut):
                self.logger.warning("incomplete request heads over their memory bound: one refused")
                self.refuse(throttled())
                return None
            self._held += cut
        self._arm()
        return cut

    def _chunks_fit(self, data: bytes) -> bool:
        """Before h11 parses more of a chunked body: line feeds (each chunk has two, each trailer line
        one) at most one per 64 bytes past an allowance, and bytes that decode to nothing bounded."""
        decoded = self.conn.decoded  # of what h11 was given so far
        if self._body_wire - decoded > self.limits.max_header_bytes + decoded // OVERHEAD_SHARE:
            return False
        self._body_wire += len(data)
        self._body_line_feeds += data.count(b"\n")
        allowance = 2 * CHUNK_ALLOWANCE + self.limits.max_header_lines
        return self._body_line_feeds <= allowance + self._body_wire // 64

    def on_response_complete(self) -> None:
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            pipelined = self.conn.trailing_data[0]  # the next head, read with the last request
            if pipelined:
                self._head_done()
                self.conn.start_next_cycle()
                if self._scan_head(pipelined) is None:  # scanned before h11 parses it
                    return
                super().on_response_complete()  # the keep-alive timer, reading resumed
                if not self.transport.is_closing():
                    self.handle_events()
                    self._after_events()
                return
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE and not self._head.size:
            self.book.now_idle(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        self.book.busy(self)
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """As uvicorn's, but an idle TLS connection is dropped, not closed: closing waits for the client's
        TLS close_notify (30 s), which a pooled client that is not reading never sends, and a rolling
        restart would wait that long for every idle keep-alive connection."""
        idle = self.cycle is None or self.cycle.response_complete
        super().shutdown()
        if idle and self.transport.get_extra_info("sslcontext") is not None:
            self.transport.abort()

    # refusals

    def send_400_response(self, msg: str) -> None:
        refusal, self.conn.refusal = self.conn.refusal, None
        if refusal is not None:  # chunks too small
            self.refuse(refusal, drain=False)
        elif self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete:
            self.transport.close()  # too late for an answer
        else:  # malformed: uvicorn's plain answer, as for any framing error
            super().send_400_response(msg)

    def refuse(self, error: ApiError, *, drain: bool = True) -> None:
        """Answer ``error`` in the contract's JSON body and close the connection, after reading on a
        while (``drain``) or at once: a body of tiny chunks is not worth reading, even discarded."""
        if self.cycle is not None and not self.cycle.response_complete:
            if self.cycle.response_started:
                self.transport.close()
                return
            self.cycle.disconnected = True  # the application reads no more and its answer goes nowhere
            self.cycle.message_event.set()
        response = error_response(error, request_id=str(uuid.uuid4()).upper(), xml=False)
        headers = [*response.raw_headers, (b"connection", b"close")]
        reason = b"Bad Request" if response.status_code == 400 else b"Too Many Requests"
        try:
            for event in (
                h11.Response(status_code=response.status_code, headers=headers, reason=reason),
                h11.Data(data=bytes(response.body)),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:
            self.transport.close()
            return
        if not drain:
            self.transport.close()
            return
        # Closing with unread bytes would reset the connection and lose the answer: half-close, read on.
        self._draining, self._drain_left = True, self.limits.max_head_bytes
        if self.transport.can_write_eof():
            try:
                self.transport.write_eof()
            except OSError:  # the client is gone already
                self.transport.close()
                return
        self.loop.call_later(DRAIN_TIMEOUT_S, self.transport.close)


def uvicorn_http_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config``: a protocol class of this server's own."""
    limits = ProtocolLimits.of(settings)
    protocol = type("ServerProtocol", (ServerProtocol,), {"limits": limits, "book": ConnectionBook(limits)})
    return {
        "http": protocol,
        "h11_max_incomplete_event_size": limits.max_head_bytes,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        "server_header": False,  # Alibaba's gateway sends no Server header (uvicorn would say "uvicorn")
    }
