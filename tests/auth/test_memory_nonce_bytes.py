"""The in-memory nonce store bounds each key's share in bytes as well as in count: 128-character
nonces (the longest accepted) can no longer pin ~146 MB per key."""

from __future__ import annotations

import asyncio
import secrets
import tracemalloc

import pytest

from app.auth.nonces import MEMORY_ENTRY_BYTES, MemoryNonceStore
from app.errors import Throttled


def test_a_share_is_bounded_in_bytes() -> None:
    now = [0.0]
    per_entry = 128 + MEMORY_ENTRY_BYTES
    store = MemoryNonceStore(max_entries=10**6, clock=lambda: now[0], max_bytes=10 * per_entry)

    async def scenario() -> None:
        for n in range(10):
            assert await store.first_use("key", f"{n:0128d}", 60)
        with pytest.raises(Throttled):
            await store.first_use("key", "x" * 128, 60)
        assert store.held_bytes("key") == 10 * per_entry
        assert await store.first_use("other", "x" * 128, 60)  # another key has its own share
        now[0] = 61
        assert await store.first_use("key", "x" * 128, 60)  # expired nonces give their bytes back
        assert store.held_bytes("key") == per_entry

    asyncio.run(scenario())


def test_the_count_is_an_upper_bound_of_the_memory_taken() -> None:
    store = MemoryNonceStore(max_entries=10**6)

    async def record() -> None:
        for _ in range(20_000):
            await store.first_use("key", secrets.token_hex(64), 60)  # the longest nonce: 128 characters

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    asyncio.run(record())
    taken = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert taken <= store.held_bytes("key"), (taken, store.held_bytes("key"))


def test_seen_answers_without_recording() -> None:
    now = [0.0]
    store = MemoryNonceStore(max_entries=10, clock=lambda: now[0])

    async def scenario() -> None:
        assert not await store.seen("key", "n") and len(store) == 0
        assert await store.first_use("key", "n", 10)
        assert await store.seen("key", "n") and not await store.seen("other", "n")
        now[0] = 11
        assert not await store.seen("key", "n")

    asyncio.run(scenario())
