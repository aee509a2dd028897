"""The shared nonce store on a real ``redis-server``: an evicting Redis refuses start-up, each key
has its share in Redis as in memory, and a full Redis fails ``/readyz`` with the reason (and
recovers) while signed calls fail closed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.auth.nonces import REDIS_ENTRY_BYTES, NonceStoreConfigError, RedisNonceStore
from app.errors import ServiceUnavailable, Throttled
from app.settings import Settings
from tests.api.test_gateway import KEY_ID, SECRET, post_form, signed_form
from tests.helpers.gateway import StandInComparisons, gateway
from tests.helpers.redis import run_redis


@pytest.fixture()
def redis_url(tmp_path: Path) -> Iterator[str]:
    with run_redis(tmp_path) as url:
        yield url


def configure(url: str, **values: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for name, value in values.items():
        client.config_set(name.replace("_", "-"), value)
    client.close()


@pytest.mark.parametrize("policy", ["volatile-lru", "allkeys-lru", "allkeys-random", "volatile-ttl"])
def test_an_evicting_redis_refuses_start_up(redis_url: str, policy: str) -> None:
    configure(redis_url, maxmemory_policy=policy)

    async def scenario() -> None:
        store = RedisNonceStore(redis_url)
        try:
            with pytest.raises(NonceStoreConfigError, match=policy):
                await store.start()
        finally:
            await store.close()

    asyncio.run(scenario())


def test_each_key_has_its_share_in_redis(redis_url: str) -> None:
    async def scenario() -> None:
        store = RedisNonceStore(redis_url, max_entries=3)
        await store.start()
        try:
            assert store.problem() is None
            for nonce in ("1", "2", "3"):
                assert await store.first_use("noisy", nonce, 60)
            with pytest.raises(Throttled):  # full of live nonces: refuse, never forget one
                await store.first_use("noisy", "4", 60)
            assert not await store.first_use("noisy", "1", 60)  # a replay is still a replay
            assert await store.first_use("quiet", "1", 60)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_seen_answers_without_recording(redis_url: str) -> None:
    async def scenario() -> None:
        store = RedisNonceStore(redis_url)
        try:
            assert not await store.seen("key", "n")
            assert not await store.seen("key", "n")  # asking records nothing
            assert await store.first_use("key", "n", 1)
            assert await store.seen("key", "n") and not await store.seen("other", "n")
            await asyncio.sleep(1.2)
            assert not await store.seen("key", "n")  # expired
        finally:
            await store.close()

    asyncio.run(scenario())


def test_the_share_is_bounded_in_bytes_too(redis_url: str) -> None:
    store = RedisNonceStore(redis_url, max_entries=10**6, max_bytes=4 * REDIS_ENTRY_BYTES)
    assert store.share == 4
    asyncio.run(store.close())


def test_a_nonce_of_an_earlier_version_is_still_a_replay(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.set("comparefaces:nonce:3:key:old", b"1", ex=60)  # SET NX EX per nonce, before this version
    client.close()

    async def scenario() -> None:
        store = RedisNonceStore(redis_url)
        try:
            assert not await store.first_use("key", "old", 60)
            assert await store.first_use("key", "new", 60)
        finally:
            await store.close()

    asyncio.run(scenario())


def fill(url: str) -> None:
    """Make Redis full: 4 MB of data of no one's (another tenant's, or a flood's), then a maxmemory
    under what it holds, so that every write is refused (at the edge, writes alternate)."""
    import redis

    client = redis.Redis.from_url(url)
    for n in range(64):
        client.set(f"filler:{n}", b"x" * 65536)
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - 1024 * 1024)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        client.set("filler:one-more", b"x")
    client.close()


def empty(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.delete(*client.keys("filler:*"))
    client.close()


def test_a_full_redis_fails_readiness_with_the_reason_and_recovers(redis_url: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"AccessKeyId": KEY_ID, "AccessKeySecret": SECRET}]}))
    keys.chmod(0o600)
    configure(redis_url, maxmemory_policy="noeviction")
    settings = Settings(access_keys_file=keys, object_store_root=tmp_path, redis_url=redis_url)
    with gateway(settings, StandInComparisons()) as client:
        assert client.get("/readyz").status_code == 200
        assert post_form(client, signed_form("before-full")).status_code == 200
        fill(redis_url)
        refused = post_form(client, signed_form("while-full"))
        assert refused.status_code == 503 and refused.json()["Code"] == "ServiceUnavailable"
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert "Redis is full" in ready.json()["keys"]
        empty(redis_url)
        deadline = time.monotonic() + 15  # the store re-checks every 5 s
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").text
            time.sleep(0.5)
        assert post_form(client, signed_form("after-full")).status_code == 200


def test_redis_going_away_fails_signed_requests_closed_and_keeps_the_replica_ready(tmp_path: Path) -> None:
    """Every replica shares the one Redis: out of the balancer they would all be, and callers would get
    the balancer's page instead of ServiceUnavailable (docs/operations.md)."""
    pytest.importorskip("redis", reason="the redis Python client is not installed")

    async def scenario() -> None:
        with run_redis(tmp_path) as url:
            store = RedisNonceStore(url, check_interval_s=0.2, timeout_s=0.5)
            await store.start()
            assert store.problem() is None
        await asyncio.sleep(1.5)
        try:
            assert store.problem() is None
            with pytest.raises(ServiceUnavailable):
                await store.first_use("key", "k", 60)
        finally:
            await store.close()

    asyncio.run(scenario())
