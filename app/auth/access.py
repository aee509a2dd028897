"""Who may call: the seam between the HTTP layer and request-signature verification."""

from __future__ import annotations

from typing import Protocol

from app.wire.request import RpcRequest


class Authenticator(Protocol):
    open_mode: bool  # True: no keys configured, every request is served (local development)

    async def authenticate(self, request: RpcRequest) -> str | None:
        """Verify the request's signature before any image is touched.

        Returns the caller's AccessKeyId (None in open mode); raises a gateway ``ApiError``.
        """
        ...

    async def precheck(self, head: RpcRequest) -> str | None:
        """Before the body is read (``head`` has none): refuse what the head alone shows is wrong
        (unknown key, stale timestamp, a V3 signature over the declared body hash that does not match).
        Returns the AccessKeyId when the head alone proves who signed (V3 with ``x-acs-content-sha256``),
        else None: such a request's body is received in the share for callers not yet verified."""
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

    async def precheck(self, head: RpcRequest) -> str | None:
        return None

    def problem(self) -> str | None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
