"""Signature nonces seen within the freshness window: in memory (one process) or in Redis (shared)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from app.errors import ServiceUnavailable, Throttled


class NonceStore(Protocol):
    async def first_use(self, owner: str, nonce: str, ttl_s: int) -> bool:
        """Record ``nonce`` of access key ``owner`` for ``ttl_s`` seconds; False when it was already
        recorded and has not expired. Both arrive in the canonical form the signature covered."""
        ...

    async def seen(self, owner: str, nonce: str) -> bool:
        """Whether ``nonce`` of ``owner`` is recorded and live; records nothing (the head precheck)."""
        ...

    async def close(self) -> None: ...


def nonce_key(owner: str, nonce: str) -> str:
    """One unambiguous key per (owner, nonce), whatever characters either holds."""
    return f"{len(owner)}:{owner}:{nonce}"


class MemoryNonceStore:
    """Bounded and thread-safe, with one share per access key: a key whose share is full of live
    nonces is refused (``Throttling.User``) rather than having nonces forgotten early, which would
    let a replay through; other keys are not affected. Memory is bounded by keys x ``max_entries``
    (owners are keys that passed the signature check)."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries  # per access key
        self._clock = clock
        # insertion order == expiry order (fixed ttl)
        self._expiry: dict[str, OrderedDict[str, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._expiry.values())

    async def first_use(self, owner: str, nonce: str, ttl_s: int) -> bool:
        now = self._clock()
        with self._lock:
            entries = self._expiry.setdefault(owner, OrderedDict())
            while entries:
                oldest, expires = next(iter(entries.items()))
                if expires > now:
                    break
                del entries[oldest]
            if nonce in entries:
                return False
            if len(entries) >= self.max_entries:
                raise Throttled()
            entries[nonce] = now + ttl_s
            return True

    async def seen(self, owner: str, nonce: str) -> bool:
        with self._lock:
            entries = self._expiry.get(owner)
            expires = entries.get(nonce) if entries is not None else None
        return expires is not None and expires > self._clock()

    async def close(self) -> None:
        return None


class RedisNonceStore:
    """``SET key 1 NX EX ttl`` on a shared Redis: one nonce store for every worker and replica.

    Redis unreachable: requests fail closed with ``ServiceUnavailable``.
    """

    PREFIX = "comparefaces:nonce:"

    def __init__(self, url: str, *, timeout_s: float = 2.0) -> None:
        import redis.asyncio

        self._redis: Any = redis.asyncio.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    async def first_use(self, owner: str, nonce: str, ttl_s: int) -> bool:
        import redis

        try:
            return bool(await self._redis.set(self.PREFIX + nonce_key(owner, nonce), b"1", nx=True, ex=ttl_s))
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc

    async def seen(self, owner: str, nonce: str) -> bool:
        import redis

        try:
            return bool(await self._redis.exists(self.PREFIX + nonce_key(owner, nonce)))
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc

    async def close(self) -> None:
        await self._redis.aclose()
