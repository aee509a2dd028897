"""Receive slots by what the head showed: unverified and claimed bodies have their own shares, every
key a share, one (key, nonce) one receipt at a time, one client address a cap."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from app.api.intake import BodyShares, body_shares
from app.auth.access import UNKNOWN_SENDER, HeadCheck
from app.errors import ApiError, SignatureNonceUsed, Throttled
from app.settings import Settings


def held(shares: BodyShares, senders: list[tuple[HeadCheck, str]]) -> list[str]:
    """The outcome of each sender's receipt while all earlier ones are still receiving."""

    async def run() -> list[str]:
        outcomes = []
        async with AsyncExitStack() as stack:
            for sender, client in senders:
                try:
                    await stack.enter_async_context(shares.receiving(sender, client))
                    outcomes.append("in")
                except ApiError as error:
                    outcomes.append(error.code)
        return outcomes

    return asyncio.run(run())


def claimed(key: str, nonce: str) -> HeadCheck:
    return HeadCheck(key_id=key, nonce=nonce)


def verified(key: str, nonce: str) -> HeadCheck:
    return HeadCheck(key_id=key, nonce=nonce, verified=True)


THROTTLED = Throttled.code


def test_unverified_bodies_cannot_take_the_claimed_share_nor_the_verified_slots() -> None:
    shares = BodyShares(unverified=2, claimed=2, per_key=5)
    outcomes = held(
        shares,
        [(UNKNOWN_SENDER, "10.0.0.1")] * 3
        + [(claimed("A", "1"), "10.0.0.2"), (claimed("B", "2"), "10.0.0.3"), (claimed("C", "3"), "10.0.0.4")]
        + [(verified("A", "4"), "10.0.0.1")],
    )
    assert outcomes == ["in", "in", THROTTLED, "in", "in", THROTTLED, "in"]


def test_one_key_has_a_share_of_receipts_verified_or_claimed() -> None:
    shares = BodyShares(unverified=10, claimed=10, per_key=2)
    senders = [(verified("A", "1"), ""), (claimed("A", "2"), ""), (verified("A", "3"), ""), (verified("B", "1"), "")]
    assert held(shares, senders) == ["in", "in", THROTTLED, "in"]


def test_one_signed_request_is_received_once_at_a_time() -> None:
    shares = BodyShares(unverified=10, claimed=10, per_key=10)
    senders = [(verified("A", "n"), "a"), (verified("A", "n"), "b"), (claimed("A", "n"), "c"), (verified("B", "n"), "")]
    assert held(shares, senders) == ["in", SignatureNonceUsed.code, SignatureNonceUsed.code, "in"]
    assert held(shares, [(verified("A", "n"), "a")]) == ["in"]  # once the first receipt is over


def test_one_client_address_has_a_cap_on_unverified_and_claimed_bodies() -> None:
    shares = BodyShares(unverified=10, claimed=10, per_key=10, per_client=2)
    senders = [
        (UNKNOWN_SENDER, "10.0.0.9"),
        (claimed("A", "1"), "10.0.0.9"),
        (UNKNOWN_SENDER, "10.0.0.9"),
        (verified("B", "1"), "10.0.0.9"),  # verified: not capped by address
        (UNKNOWN_SENDER, "10.0.0.8"),
    ]
    assert held(shares, senders) == ["in", "in", THROTTLED, "in", "in"]


@pytest.mark.parametrize("open_mode", [True, False])
def test_the_apis_shares_come_from_the_settings(open_mode: bool) -> None:
    settings = Settings(max_open_requests=40, max_unverified_bodies=20, max_claimed_bodies=12, max_bodies_per_client=5)
    shares = body_shares(settings, open_mode)
    if open_mode:  # nothing is signed: every slot may receive an unsigned body, from any address
        assert (shares.unverified, shares.per_client) == (40, 0)
    else:
        assert (shares.unverified, shares.claimed, shares.per_key, shares.per_client) == (20, 12, 10, 5)
