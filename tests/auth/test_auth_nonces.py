"""Nonce stores: the bounded in-memory one, and Redis against a real ``redis-server``."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.auth.nonces import MemoryNonceStore, RedisNonceStore
from app.errors import ServiceUnavailable, Throttled


def test_memory_store_expires_and_is_bounded() -> None:
    now = [0.0]
    store = MemoryNonceStore(max_entries=2, clock=lambda: now[0])

    async def scenario() -> None:
        assert await store.first_use("a", 10)
        assert not await store.first_use("a", 10)
        assert await store.first_use("b", 10)
        with pytest.raises(Throttled):  # full of live nonces: refuse rather than forget one
            await store.first_use("c", 10)
        now[0] = 10.5
        assert await store.first_use("a", 10)  # expired entries are dropped
        assert len(store) == 1

    asyncio.run(scenario())


def test_memory_store_is_thread_safe() -> None:
    store = MemoryNonceStore(max_entries=100_000)
    wins: list[bool] = []

    def worker() -> None:
        wins.extend(asyncio.run(store.first_use(f"k{i}", 60)) for i in range(500))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(wins) == 500 and len(store) == 500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("redis", reason="the redis Python client is not installed")
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install -y redis-server)")
    port = free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_redis_store_set_nx_ex(redis_url: str) -> None:
    async def scenario() -> None:
        first, second = RedisNonceStore(redis_url), RedisNonceStore(redis_url)  # two workers, one store
        try:
            assert await first.first_use("key:nonce-1", 1)
            assert not await second.first_use("key:nonce-1", 1)
            assert await second.first_use("key:nonce-2", 60)
            await asyncio.sleep(1.6)
            assert await first.first_use("key:nonce-1", 60)  # expired with EX
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
                await store.first_use("k", 60)
        finally:
            await store.close()

    asyncio.run(scenario())
