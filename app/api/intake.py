"""Receiving requests without letting slow or unsigned senders hold what signed callers need.

Three policies, each a small object the app owns (no I/O beyond the request being read):

* ``BodyReceiver``: a body must keep arriving at ``min_rate`` bytes/s after ``grace_s`` (and in full
  within ``max_s``); a body over the limit is read and discarded up to ``drain_bytes`` more, so that
  the client, which is still sending, reads the error instead of a connection reset.
* ``BodyShares``: bodies whose sender the head alone could not verify (RPC v1 signs the body; open
  mode signs nothing) may occupy at most ``unverified`` of the receive slots; the rest are kept for
  callers whose V3 signature was verified from the head.
* ``KeyShares``: one access key may have at most ``per_key`` comparisons in flight (fetching,
  queued or running), so one key cannot throttle another.

Past a share: ``Throttling.User`` with ``x-acs-retry-after``, the body unread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.requests import ClientDisconnect, Request

from app.errors import ImageValuePatternError, Throttled

RETRY_AFTER_MS = "1000"
CLOSE = {"connection": "close"}  # the rest of the body is not wanted: drop the connection after the answer


def throttled() -> Throttled:
    return Throttled(headers={"x-acs-retry-after": RETRY_AFTER_MS})


def rate_deadline(started: float, received: int, *, grace_s: float, min_rate: float, max_s: float | None) -> float:
    """The moment by which more bytes must have arrived: ``received`` bytes buy ``received / min_rate``
    seconds past the grace period, and nothing buys more than ``max_s`` in all. Pure."""
    deadline = started + grace_s + (received / min_rate if min_rate > 0 else float("inf"))
    return deadline if max_s is None else min(deadline, started + max_s)


@dataclass(frozen=True)
class BodyReceiver:
    grace_s: float
    min_rate: float  # bytes per second; 0: no rate required
    drain_bytes: int  # read and discard at most this much past the limit before answering

    async def __call__(self, request: Request, limit: int, max_s: float | None = None) -> bytes:
        """The raw body (chunked or not). Refused (``ImageValuePatternError``, connection closed) past
        ``limit`` bytes, when it arrives slower than the rate, not in full within ``max_s``, or the
        client left."""
        started = time.monotonic()
        declared = request.headers.get("content-length", "")
        declared_size = int(declared) if declared.isdigit() and len(declared) < 19 else None
        chunks: list[bytes] = []
        received = 0
        stream = request.stream().__aiter__()
        try:
            while True:
                wait = rate_deadline(started, received, grace_s=self.grace_s, min_rate=self.min_rate, max_s=max_s)
                if declared_size is not None and declared_size > limit:
                    break
                try:
                    chunk = await asyncio.wait_for(stream.__anext__(), max(0.0, wait - time.monotonic()))
                except StopAsyncIteration:
                    return b"".join(chunks)
                received += len(chunk)
                if received > limit:
                    break
                chunks.append(chunk)
        except (asyncio.TimeoutError, ClientDisconnect) as exc:
            raise ImageValuePatternError(headers=CLOSE) from exc
        chunks.clear()
        await self._drain(stream, started, received, limit, declared_size, max_s)
        raise ImageValuePatternError(headers=CLOSE)

    async def _drain(
        self,
        stream: AsyncIterator[bytes],
        started: float,
        received: int,
        limit: int,
        declared_size: int | None,
        max_s: float | None,
    ) -> None:
        """Discard what the client is still sending, up to ``drain_bytes`` past the limit."""
        if declared_size is not None and declared_size > limit + self.drain_bytes:
            return  # too much to wait for: answer now
        budget = limit + self.drain_bytes
        try:
            while received <= budget:
                wait = rate_deadline(started, received, grace_s=self.grace_s, min_rate=self.min_rate, max_s=max_s)
                received += len(await asyncio.wait_for(stream.__anext__(), max(0.0, wait - time.monotonic())))
        except (StopAsyncIteration, asyncio.TimeoutError, ClientDisconnect):
            return


@dataclass
class BodyShares:
    """Receive slots for bodies whose sender is not yet verified (see the module docstring)."""

    unverified: int
    _receiving: int = 0

    @asynccontextmanager
    async def receiving(self, verified_key: str | None) -> AsyncIterator[None]:
        if verified_key is not None:
            yield
            return
        if self._receiving >= self.unverified:
            raise throttled()
        self._receiving += 1
        try:
            yield
        finally:
            self._receiving -= 1


@dataclass
class KeyShares:
    """Comparisons in flight per access key (event-loop only: no lock needed)."""

    per_key: int
    _in_flight: dict[str, int] = field(default_factory=dict)

    @asynccontextmanager
    async def comparing(self, key_id: str | None) -> AsyncIterator[None]:
        if key_id is None:  # open mode: one caller, nothing to share
            yield
            return
        if self._in_flight.get(key_id, 0) >= self.per_key:
            raise throttled()
        self._in_flight[key_id] = self._in_flight.get(key_id, 0) + 1
        try:
            yield
        finally:
            left = self._in_flight[key_id] - 1
            if left:
                self._in_flight[key_id] = left
            else:
                del self._in_flight[key_id]


@asynccontextmanager
async def admitted(admission: asyncio.Semaphore) -> AsyncIterator[None]:
    """A slot of the pool (decoding and inference, queued or running), or ``Throttling.User`` at once."""
    if admission.locked():
        raise throttled()
    async with admission:
        yield
