"""uvicorn's HTTP/1.1 protocol with a deadline for request heads.

uvicorn closes a keep-alive connection that stays idle between requests, but a new connection
that sends nothing, or sends a head a byte at a time, is held for as long as the client likes
(600 such connections cost nothing to open). Here every head must arrive at ``min_rate`` bytes/s
after ``grace_s`` (the rule bodies follow too, see ``app.api.intake``); a connection that falls
behind is closed. Heads may be large (images in the query string), so the deadline grows with
the bytes received rather than being one fixed time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from app.api.intake import rate_deadline


class HeadDeadlineProtocol(H11Protocol):
    grace_s: float = 10.0
    min_rate: float = 16384.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started = 0.0
        self._head_bytes = 0

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        deadline = rate_deadline(
            self._head_started, self._head_bytes, grace_s=self.grace_s, min_rate=self.min_rate, max_s=None
        )
        self._head_timer = self.loop.call_later(max(0.0, deadline - time.monotonic()), self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._head_bytes = 0

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._waiting_for_head() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_started = time.monotonic()
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_head():
            if self._head_timer is None:  # the first bytes of a next head on a kept-alive connection
                self._head_started = time.monotonic()
            self._head_bytes += len(data)
            self._arm()
        super().data_received(data)
        if not self._waiting_for_head():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
