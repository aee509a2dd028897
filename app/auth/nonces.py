"""Signature nonces seen within the freshness window: in memory (one process) or in Redis (shared)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from app.errors import ServiceUnavailable, Throttled

log = logging.getLogger("comparefaces.auth")

MEMORY_ENTRY_BYTES = 168  # an OrderedDict entry of str -> float, besides the nonce's characters (measured)
REDIS_ENTRY_BYTES = 256  # a sorted-set member of a 128-character nonce, the longest accepted (measured)


class NonceStore(Protocol):
    async def first_use(self, owner: str, nonce: str, ttl_s: int) -> bool:
        """Record ``nonce`` of access key ``owner`` for ``ttl_s`` seconds; False when it was already
        recorded and has not expired. Both arrive in the canonical form the signature covered."""
        ...

    async def seen(self, owner: str, nonce: str) -> bool:
        """Whether ``nonce`` of ``owner`` is recorded and live, recording nothing (a precheck's question)."""
        ...

    async def start(self) -> None:
        """Check the store can keep its promise (Redis: no eviction), before serving."""
        ...

    def problem(self) -> str | None:
        """Why signed requests would fail now (for ``/readyz``), or None."""
        ...

    async def close(self) -> None: ...


def nonce_key(owner: str, nonce: str) -> str:
    """One unambiguous key per (owner, nonce), whatever characters either holds."""
    return f"{len(owner)}:{owner}:{nonce}"


class MemoryNonceStore:
    """Bounded and thread-safe, with one share per access key: a key whose share is full of live
    nonces is refused (``Throttling.User``) rather than having nonces forgotten early, which would
    let a replay through; other keys are not affected. A share holds at most ``max_entries`` nonces
    and ``max_bytes`` of memory (each nonce's characters plus ``MEMORY_ENTRY_BYTES``), so memory is
    bounded by keys x ``max_bytes`` (owners are keys that passed the signature check)."""

    def __init__(
        self, max_entries: int, clock: Callable[[], float] = time.monotonic, *, max_bytes: int = 1 << 62
    ) -> None:
        self.max_entries = max_entries  # per access key
        self.max_bytes = max_bytes  # per access key
        self._clock = clock
        # insertion order == expiry order (fixed ttl)
        self._expiry: dict[str, OrderedDict[str, float]] = {}
        self._bytes: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._expiry.values())

    async def first_use(self, owner: str, nonce: str, ttl_s: int) -> bool:
        now = self._clock()
        with self._lock:
            entries = self._expiry.setdefault(owner, OrderedDict())
            held = self._bytes.get(owner, 0)
            while entries:
                oldest, expires = next(iter(entries.items()))
                if expires > now:
                    break
                del entries[oldest]
                held -= len(oldest) + MEMORY_ENTRY_BYTES
            self._bytes[owner] = held
            if nonce in entries:
                return False
            cost = len(nonce) + MEMORY_ENTRY_BYTES
            if len(entries) >= self.max_entries or held + cost > self.max_bytes:
                raise Throttled()
            entries[nonce] = now + ttl_s
            self._bytes[owner] = held + cost
            return True

    async def seen(self, owner: str, nonce: str) -> bool:
        with self._lock:
            entries = self._expiry.get(owner)
            expires = entries.get(nonce) if entries is not None else None
        return expires is not None and expires > self._clock()

    def held_bytes(self, owner: str) -> int:
        return self._bytes.get(owner, 0)

    async def start(self) -> None:
        return None

    def problem(self) -> str | None:
        return None

    async def close(self) -> None:
        return None


# One sorted set per access key, nonce -> expiry: the key's share is its live members, refused when
# full as in memory. Reads first, then ZADD as the first write: Redis refuses a script's first
# write when it is out of memory (OOM), not a later one. KEYS[1]: the set; ARGV: now, expiry
# (epoch seconds), nonce, share.
FIRST_USE = """
local seen = redis.call('ZSCORE', KEYS[1], ARGV[3])
if seen and tonumber(seen) > tonumber(ARGV[1]) then return 0 end
if redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf') >= tonumber(ARGV[4]) then return -1 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""


REDIS_UNREACHABLE = "Redis unreachable"


class RedisNonceStore:
    """Each access key's nonces in one sorted set on a shared Redis: one nonce store for every
    worker and replica, each key's share at most ``max_entries`` nonces and ``max_bytes`` of Redis
    memory (counted at ``REDIS_ENTRY_BYTES`` per nonce, the longest's cost).

    Redis must not evict (``maxmemory-policy noeviction``): an evicted nonce is a replay let through.
    Another policy refuses start-up; a Redis that turns full (OOM), changes policy or goes away
    fails ``/readyz`` with the reason (checked every ``check_interval_s``) while requests fail closed
    with ``ServiceUnavailable``.
    """

    PREFIX = "comparefaces:nonces:"
    LEGACY_PREFIX = "comparefaces:nonce:"  # one key per nonce, written by earlier versions
    PROBE = "comparefaces:probe"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        max_entries: int = 500_000,
        max_bytes: int = 1 << 62,
        check_interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import redis.asyncio

        self._redis: Any = redis.asyncio.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._first_use = self._redis.register_script(FIRST_USE)
        self.share = max(1, min(max_entries, max_bytes // REDIS_ENTRY_BYTES))
        self.check_interval_s = check_interval_s
        self._clock = clock
        self._problem: str | None = "not checked yet"
        self._monitor: asyncio.Task[None] | None = None

    async def first_use(self, owner: str, nonce: str, ttl_s: int) -> bool:
        import redis

        now = self._clock()
        try:
            outcome = await self._first_use(keys=[self.PREFIX + owner], args=[now, now + ttl_s, nonce, self.share])
            if outcome == 1 and await self._redis.exists(self.LEGACY_PREFIX + nonce_key(owner, nonce)):
                return False  # recorded by a replica of an earlier version, within the window
        except redis.exceptions.OutOfMemoryError as exc:
            self._problem = f"Redis is full ({exc}): signed requests fail until nonces expire or maxmemory is raised"
            log.error("nonce store: %s", self._problem)
            raise ServiceUnavailable() from exc
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc
        if outcome == -1:
            raise Throttled()
        return bool(outcome == 1)

    async def seen(self, owner: str, nonce: str) -> bool:
        import redis

        try:
            expires = await self._redis.zscore(self.PREFIX + owner, nonce)
            if expires is not None and float(expires) > self._clock():
                return True
            return bool(await self._redis.exists(self.LEGACY_PREFIX + nonce_key(owner, nonce)))
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc

    async def check(self) -> str | None:
        """What is wrong with the Redis now: unreachable, an eviction policy, or full; None: fine."""
        import redis

        memory: dict[str, Any] = {}
        try:
            memory = await self._redis.info("memory")
            policy = str(memory.get("maxmemory_policy", ""))
            if policy != "noeviction":
                return (
                    f"Redis maxmemory-policy is {policy!r}: it may evict nonces and let replays through; "
                    "set maxmemory-policy noeviction"
                )
            await self._redis.set(self.PROBE, b"1", ex=60)  # refused with OOM when Redis is full
        except redis.exceptions.OutOfMemoryError as exc:
            used, limit = memory.get("used_memory", "?"), memory.get("maxmemory", "?")
            return f"Redis is full (used_memory {used} of maxmemory {limit}: {exc}): signed requests fail"
        except redis.RedisError as exc:
            return f"{REDIS_UNREACHABLE}: {type(exc).__name__}"
        return None

    async def start(self) -> None:
        """Refuse to serve on an evicting Redis; a Redis not up yet only keeps ``/readyz`` failing."""
        self._problem = await self.check()
        if self._problem is not None and "maxmemory-policy" in self._problem:
            raise NonceStoreConfigError(self._problem)
        if self._problem is not None:
            log.error("nonce store: %s", self._problem)
        self._monitor = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Re-check now and then. Once Redis has answered, an outage is not a readiness problem: every
        replica shares the one Redis, and taking them all out of the balancer would turn the signed
        requests' ``ServiceUnavailable`` (which they get, failing closed) into the balancer's own page."""
        answered = self._problem is None or not self._problem.startswith(REDIS_UNREACHABLE)
        shown = self._problem
        while True:
            await asyncio.sleep(self.check_interval_s)
            problem = await self.check()
            outage = problem is not None and problem.startswith(REDIS_UNREACHABLE)
            if problem != shown:
                suffix = " (signed requests fail closed; the replica stays ready)" if outage and answered else ""
                level = logging.ERROR if problem else logging.INFO
                log.log(level, "nonce store: %s%s", problem or "Redis fine", suffix)
                shown = problem
            answered = answered or not outage
            self._problem = None if outage and answered else problem

    def problem(self) -> str | None:
        return self._problem

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self._redis.aclose()


class NonceStoreConfigError(RuntimeError):
    """The shared nonce store would not keep every nonce (an evicting Redis): the server refuses to start."""
