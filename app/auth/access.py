"""Who may call: the seam between the HTTP layer and request-signature verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.wire.request import RpcRequest


@dataclass(frozen=True)
class HeadCheck:
    """What a request head showed about its sender before the body is read."""

    key_id: str | None = None  # a known access key the head names (None: unsigned, or signed in the body)
    nonce: str = ""  # its signature nonce, unused so far
    verified: bool = False  # the head alone proved the signature (V3 over the declared body hash)


UNKNOWN_SENDER = HeadCheck()


class Authenticator(Protocol):
    open_mode: bool  # True: no keys configured, every request is served (local development)

    async def authenticate(self, request: RpcRequest) -> str | None:
        """Verify the request's signature before any image is touched.

        Returns the caller's AccessKeyId (None in open mode); raises a gateway ``ApiError``.
        """
        ...

    async def precheck(self, head: RpcRequest) -> HeadCheck:
        """Before the body is read (``head`` has none): refuse what the head alone shows is wrong
        (unknown key, stale timestamp, a nonce already used, a V3 signature over the declared body hash
        that does not match), with the error the full check would give. Says which share the body is
        received in: verified (V3 with ``x-acs-content-sha256``), claimed (a known key, fresh timestamp
        and unused nonce in the head: RPC v1 with its common parameters in the query), or neither."""
        ...

    def problem(self) -> str | None:
        """Why signed callers may be refused wrongly now (e.g. the keys file is broken, Redis full), or None."""
        ...

    async def start(self) -> None:
        """Checks before serving (an evicting Redis refuses start-up)."""
        ...

    async def close(self) -> None: ...


class OpenAccess:
    open_mode = True

    async def authenticate(self, request: RpcRequest) -> str | None:
        return None

    async def precheck(self, head: RpcRequest) -> HeadCheck:
        return UNKNOWN_SENDER

    def problem(self) -> str | None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
