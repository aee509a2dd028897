"""The head precheck: what it verifies from a head before the body is read, that it refuses a spent
nonce with the full check's error and records nothing, and the nonce stores' read-only look-up.
Heads are the official SDKs' captures (``tests/fixtures/sdk-wire``) without their bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.auth.access import UNKNOWN_SENDER, HeadCheck
from app.auth.nonces import MemoryNonceStore, RedisNonceStore
from app.errors import SignatureNonceUsed
from app.wire.request import RpcRequest
from tests.auth.test_auth_wire_replay import KEY_ID, WIRE, authenticator, capture_time, parse_wire, to_rpc
from tests.helpers.redis import run_redis


def head_and_request(name: str) -> tuple[RpcRequest, RpcRequest]:
    wire = parse_wire((WIRE / name).read_bytes())
    return to_rpc(replace(wire, body=b"")), to_rpc(wire)


@pytest.mark.parametrize(
    ("name", "verified"),
    [("tea-v3-ak.http", True), ("tea-v2-ak.http", False), ("core-ak.http", False), ("js-tea-v3-ak.http", True)],
)
def test_a_spent_nonce_is_refused_from_the_head_with_the_full_checks_error(
    name: str, verified: bool, tmp_path: Path
) -> None:
    head, request = head_and_request(name)
    auth = authenticator(tmp_path, capture_time(request) + 60)
    check = asyncio.run(auth.precheck(head))
    assert (check.key_id, check.verified) == (KEY_ID, verified) and check.nonce
    assert asyncio.run(auth.precheck(head)) == check  # the precheck records nothing
    assert asyncio.run(auth.authenticate(request)) == KEY_ID
    with pytest.raises(SignatureNonceUsed):
        asyncio.run(auth.precheck(head))
    with pytest.raises(SignatureNonceUsed):
        asyncio.run(auth.authenticate(request))


def test_a_head_without_the_common_parameters_names_no_sender(tmp_path: Path) -> None:
    head, request = head_and_request("js-popcore-ak.http")  # pop-core signs in the body
    assert asyncio.run(authenticator(tmp_path, capture_time(request)).precheck(head)) == UNKNOWN_SENDER
    assert HeadCheck() == UNKNOWN_SENDER


def test_memory_store_looks_up_without_recording() -> None:
    now = [0.0]
    store = MemoryNonceStore(max_entries=10, clock=lambda: now[0])

    async def scenario() -> None:
        assert not await store.seen("key", "a")
        assert await store.first_use("key", "a", 10)
        assert await store.seen("key", "a") and not await store.seen("other", "a")
        now[0] = 11.0
        assert not await store.seen("key", "a")  # expired

    asyncio.run(scenario())
    assert len(store) == 1  # seen() added nothing


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


def test_redis_store_looks_up_without_recording(redis_url: str) -> None:
    async def scenario() -> None:
        store = RedisNonceStore(redis_url)
        try:
            assert not await store.seen("key", "look-1")
            assert await store.first_use("key", "look-1", 60)  # seen() recorded nothing
            assert await store.seen("key", "look-1") and not await store.seen("key", "look-2")
        finally:
            await store.close()

    asyncio.run(scenario())
