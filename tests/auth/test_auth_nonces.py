"""Nonce stores: the bounded in-memory one, and Redis against a real ``redis-server``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from app.auth.nonces import MemoryNonceStore, RedisNonceStore
from app.errors import ServiceUnavailable, Throttled
from tests.helpers.redis import run_redis
from tests.helpers.server import free_port


def test_memory_store_expires_and_is_bounded() -> None:
    now = [0.0]
    store = MemoryNonceStore(max_entries=2, clock=lambda: now[0])

    async def scenario() -> None:
        assert await store.first_use("key", "a", 10)
        assert not await store.first_use("key", "a", 10)
        assert await store.first_use("key", "b", 10)
        with pytest.raises(Throttled):  # full of live nonces: refuse rather than forget one
            await store.first_use("key", "c", 10)
        now[0] = 10.5
        assert await store.first_use("key", "a", 10)  # expired entries are dropped
        assert len(store) == 1

    asyncio.run(scenario())


def test_memory_store_gives_each_key_its_own_share() -> None:
    """One key filling its share (e.g. with cheap InvalidVersion calls) throttles that key only."""
    store = MemoryNonceStore(max_entries=3)

    async def scenario() -> None:
        for nonce in ("1", "2", "3"):
            assert await store.first_use("noisy", nonce, 60)
        with pytest.raises(Throttled):
            await store.first_use("noisy", "4", 60)
        assert await store.first_use("STS.quiet", "1", 60)
        assert not await store.first_use("STS.quiet", "1", 60)
        # the same nonce under another key is another nonce; no (owner, nonce) spelling collides
        assert await store.first_use("a:b", "c", 60) and await store.first_use("a", "b:c", 60)

    asyncio.run(scenario())


def test_memory_store_is_thread_safe() -> None:
    store = MemoryNonceStore(max_entries=100_000)
    wins: list[bool] = []

    def worker() -> None:
        wins.extend(asyncio.run(store.first_use("key", f"k{i}", 60)) for i in range(500))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(wins) == 500 and len(store) == 500


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


def test_redis_store_set_nx_ex(redis_url: str) -> None:
    async def scenario() -> None:
        first, second = RedisNonceStore(redis_url), RedisNonceStore(redis_url)  # two workers, one store
        try:
            assert await first.first_use("key", "nonce-1", 1)
            assert not await second.first_use("key", "nonce-1", 1)
            assert await second.first_use("key", "nonce-2", 60)
            assert await second.first_use("key:nonce", "2", 60)  # not the same entry as ("key", "nonce:2")
            assert await second.first_use("key", "nonce:2", 60)
            await asyncio.sleep(1.6)
            assert await first.first_use("key", "nonce-1", 60)  # expired with EX
        finally:
            await first.close()
            await second.close()

    asyncio.run(scenario())


def test_redis_unreachable_fails_closed() -> None:
    pytest.importorskip("redis", reason="the redis Python client is not installed")

    async def scenario() -> None:
        store = RedisNonceStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
        try:
            with pytest.raises(ServiceUnavailable):
                await store.first_use("key", "k", 60)
        finally:
            await store.close()

    asyncio.run(scenario())
