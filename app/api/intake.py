"""Receiving requests without letting slow or unsigned senders hold what signed callers need.

Three policies, each a small object the app owns (no I/O beyond the request being read):

* ``BodyReceiver``: a body must keep arriving at ``min_rate`` bytes/s after ``grace_s`` (and in full
  within ``max_s``); a body over the limit is read and discarded up to ``drain_bytes`` more, so that
  the client, which is still sending, reads the error instead of a connection reset. The API and
  the OSS upload endpoint receive their bodies through it alike.
* ``BodyShares``: receive slots by what the head showed (``HeadCheck``). Bodies whose sender the
  head could not name (open mode, RPC v1 signed in the body) may occupy at most ``unverified``;
  bodies whose head names a known key with a fresh timestamp but cannot prove it (RPC v1 with its
  common parameters in the query) at most ``claimed``; verified (V3) ones take the rest. Every key
  has at most ``per_key`` bodies being received, one (key, nonce) one receipt at a time, and one
  client address at most ``per_client`` unverified or claimed bodies.
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

from app.auth.access import HeadCheck
from app.errors import SignatureNonceUsed, Throttled
from app.settings import Settings

RETRY_AFTER_MS = "1000"
CLOSE = {"connection": "close"}  # the rest of the body is not wanted: drop the connection after the answer


def throttled() -> Throttled:
    return Throttled(headers={"x-acs-retry-after": RETRY_AFTER_MS})


def rate_deadline(started: float, received: int, *, grace_s: float, min_rate: float, max_s: float | None) -> float:
    """The moment by which more bytes must have arrived: ``received`` bytes buy ``received / min_rate``
    seconds past the grace period, and nothing buys more than ``max_s`` in all. Pure."""
    deadline = started + grace_s + (received / min_rate if min_rate > 0 else float("inf"))
    return deadline if max_s is None else min(deadline, started + max_s)


class BodyRefused(Exception):
    """The body was not received; the caller answers in its own protocol's error."""

    def __init__(self, too_large: bool) -> None:
        super().__init__("body over the limit" if too_large else "body too slow, or the client left")
        self.too_large = too_large


@dataclass(frozen=True)
class BodyReceiver:
    grace_s: float
    min_rate: float  # bytes per second; 0: no rate required
    drain_bytes: int  # read and discard at most this much past the limit before answering

    async def __call__(self, request: Request, limit: int, max_s: float | None = None) -> bytes:
        """The raw body (chunked or not). ``BodyRefused`` past ``limit`` bytes (``too_large``), or when
        it arrives slower than the rate, not in full within ``max_s``, or the client left."""
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
            raise BodyRefused(too_large=False) from exc
        chunks.clear()
        await self._drain(stream, started, received, limit, declared_size, max_s)
        raise BodyRefused(too_large=True)

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


def _up(counts: dict[str, int], name: str) -> None:
    counts[name] = counts.get(name, 0) + 1


def _down(counts: dict[str, int], name: str) -> None:
    left = counts[name] - 1
    if left:
        counts[name] = left
    else:
        del counts[name]


@dataclass
class BodyShares:
    """Receive slots by what the head showed (see the module docstring; event-loop only: no lock)."""

    unverified: int
    claimed: int
    per_key: int
    per_client: int = 0  # 0: no cap per client address
    _unverified_now: int = 0
    _claimed_now: int = 0
    _by_key: dict[str, int] = field(default_factory=dict)
    _by_client: dict[str, int] = field(default_factory=dict)
    _nonces: set[tuple[str, str]] = field(default_factory=set)

    @asynccontextmanager
    async def receiving(self, sender: HeadCheck, client: str = "") -> AsyncIterator[None]:
        key = sender.key_id
        receipt = (key, sender.nonce) if key is not None and sender.nonce else None
        if receipt is not None and receipt in self._nonces:
            raise SignatureNonceUsed()  # the same signed request on another connection: one of them is a replay
        if key is not None and self._by_key.get(key, 0) >= self.per_key:
            raise throttled()
        capped = not sender.verified
        if capped:
            if key is None and self._unverified_now >= self.unverified:
                raise throttled()
            if key is not None and self._claimed_now >= self.claimed:
                raise throttled()
            if self.per_client and self._by_client.get(client, 0) >= self.per_client:
                raise throttled()
        self._count(sender, client, receipt, 1)
        try:
            yield
        finally:
            self._count(sender, client, receipt, -1)

    def _count(self, sender: HeadCheck, client: str, receipt: tuple[str, str] | None, step: int) -> None:
        change = _up if step > 0 else _down
        if sender.key_id is not None:
            change(self._by_key, sender.key_id)
        if receipt is not None:
            (self._nonces.add if step > 0 else self._nonces.discard)(receipt)
        if not sender.verified:
            if sender.key_id is None:
                self._unverified_now += step
            else:
                self._claimed_now += step
            change(self._by_client, client)


def receiving_per_key(settings: Settings) -> int:
    return settings.max_receiving_per_key or max(1, settings.max_open_requests // 4)


def body_shares(settings: Settings, open_mode: bool) -> BodyShares:
    """The API's shares. In open mode nothing is signed, so every body is unverified: none kept back."""
    if open_mode:
        return BodyShares(unverified=settings.max_open_requests, claimed=0, per_key=0)
    return BodyShares(
        unverified=min(settings.max_unverified_bodies, settings.max_open_requests),
        claimed=min(settings.max_claimed_bodies, settings.max_open_requests),
        per_key=receiving_per_key(settings),
        per_client=settings.max_bodies_per_client,
    )


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
