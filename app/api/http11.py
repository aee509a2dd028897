"""HTTP/1.1 for uvicorn: request heads as large as the documented request limits, and the contract's
own error body past them.

Some clients put both base64 images in the query string (pop-core up to 1.5, the core SDK's
``CommonRequest.add_query_param``, Tea ``call_api`` with ``query=``). Over a real network such a head
arrives in many reads, and h11 refuses an incomplete head past its 16 KB default with a plain-text
400 the SDKs cannot parse. Here a head may be as large as a request body (``max_body_bytes``) plus
room for the headers; past that the caller gets ``InvalidParam.ImageValuePatternError`` in the
gateway's JSON body, as for a body over the limit. The rest of what it is still sending is read and
discarded, up to the same amount again and for a few seconds, so that the answer is not lost to a
connection reset.
"""

from __future__ import annotations

import uuid
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.api.http_protocol import HeadDeadlineProtocol
from app.errors import ImageValuePatternError
from app.settings import Settings
from app.wire.responses import error_response

HEAD_ALLOWANCE_BYTES = 64 * 1024  # request line and headers besides the parameters
DRAIN_TIMEOUT_S = 10.0


def max_head_bytes(settings: Settings) -> int:
    return settings.max_body_bytes + HEAD_ALLOWANCE_BYTES


def uvicorn_http_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config``: this protocol, with the slow-client
    head deadline of :mod:`app.api.http_protocol`."""
    protocol = type(
        "ServerProtocol",
        (HeadDeadlineProtocol, ContractH11Protocol),
        {"grace_s": settings.slow_client_grace_s, "min_rate": settings.slow_client_min_rate},
    )
    return {"http": protocol, "h11_max_incomplete_event_size": max_head_bytes(settings)}


class ContractH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering a head over the limit with the contract's error body."""

    head_bytes = 0  # received while the current request's head is incomplete
    draining = False
    drain_left = 0

    @property
    def head_limit(self) -> int:
        return self.config.h11_max_incomplete_event_size or 0

    def data_received(self, data: bytes) -> None:
        if self.draining:
            self.drain_left -= len(data)
            if self.drain_left <= 0:
                self.transport.close()
            return
        # h11 checks its limit only while a head is incomplete after a read, so a head that ends in
        # the read that crosses the limit would slip through: count here, whatever the reads.
        self.head_bytes = self.head_bytes + len(data) if self.conn.their_state is h11.IDLE else 0
        if self.conn.their_state is h11.IDLE and self.head_bytes > self.head_limit:
            self.refuse_head()
            return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if self.head_bytes > self.head_limit:
            self.refuse_head()
        else:  # malformed rather than too large: uvicorn's plain answer
            super().send_400_response(msg)

    def refuse_head(self) -> None:
        self.logger.warning("request head over %d bytes refused", self.head_limit)
        response = error_response(ImageValuePatternError(), request_id=str(uuid.uuid4()).upper(), xml=False)
        headers = [*response.raw_headers, (b"connection", b"close")]
        for event in (
            h11.Response(status_code=response.status_code, headers=headers, reason=b"Bad Request"),
            h11.Data(data=bytes(response.body)),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        # Closing with unread bytes would reset the connection and lose the answer: half-close, read on.
        self.draining, self.drain_left = True, self.head_limit
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(DRAIN_TIMEOUT_S, self.transport.close)
