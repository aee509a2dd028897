"""Signature nonces seen within the freshness window: in memory (one process) or in Redis (shared)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from app.errors import ServiceUnavailable, Throttled


class NonceStore(Protocol):
    async def first_use(self, key: str, ttl_s: int) -> bool:
        """Record ``key`` for ``ttl_s`` seconds; False when it was already recorded and not expired."""
        ...

    async def close(self) -> None: ...


class MemoryNonceStore:
    """Bounded and thread-safe. When full of live nonces it refuses new requests (``Throttling.User``)
    rather than forgetting nonces early, which would let a replay through."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()  # insertion order == expiry order (fixed ttl)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    async def first_use(self, key: str, ttl_s: int) -> bool:
        now = self._clock()
        with self._lock:
            while self._expiry:
                oldest, expires = next(iter(self._expiry.items()))
                if expires > now:
                    break
                del self._expiry[oldest]
            if key in self._expiry:
                return False
            if len(self._expiry) >= self.max_entries:
                raise Throttled()
            self._expiry[key] = now + ttl_s
            return True

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

    async def first_use(self, key: str, ttl_s: int) -> bool:
        import redis

        try:
            return bool(await self._redis.set(self.PREFIX + key, b"1", nx=True, ex=ttl_s))
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc

    async def close(self) -> None:
        await self._redis.aclose()
