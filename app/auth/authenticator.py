"""Signature verification for every RPC request, in the order the original gateway checks:

1. signed at all / well formed (``MissingParameter``, ``IncompleteSignature``)
2. key known: permanent key, or STS credential whose token matches and has not expired
   (``InvalidAccessKeyId.NotFound``)
3. signature (``SignatureDoesNotMatch``, message ending with the server's string to sign)
4. timestamp within the window (``InvalidTimeStamp.Expired``)
5. key enabled and allowed the action (``Error.NoPermissionAccess``)
6. nonce unused within the window (``SignatureNonceUsed``); recorded only for requests that passed 1-5
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from app.api.request import RpcRequest
from app.auth.canonical import SignedRequest, parse_signed_request, signature_matches
from app.auth.keys import KeyStore, parse_iso8601
from app.auth.nonces import MemoryNonceStore, NonceStore, RedisNonceStore
from app.errors import (
    AccessKeyNotFound,
    IncompleteSignature,
    NoPermissionAccess,
    SignatureDoesNotMatch,
    SignatureNonceUsed,
    TimestampExpired,
)
from app.settings import Settings

log = logging.getLogger("comparefaces.auth")

FRESHNESS_WINDOW_S = 15 * 60


class SignatureAuthenticator:
    open_mode = False

    def __init__(
        self,
        keys: KeyStore,
        nonces: NonceStore,
        *,
        clock: Callable[[], float] = time.time,
        window_s: int = FRESHNESS_WINDOW_S,
    ) -> None:
        self.keys = keys
        self.nonces = nonces
        self.clock = clock  # epoch seconds; injectable for replaying captured requests
        self.window_s = window_s
        self._previous_sighup: Any = None

    async def authenticate(self, request: RpcRequest) -> str | None:
        signed = self.verify_signature(request)
        self.check_fresh_and_allowed(signed, request.action)
        # A timestamp may lie up to one window ahead: remember the nonce for two.
        if not await self.nonces.first_use(f"{signed.access_key_id}:{signed.nonce}", 2 * self.window_s):
            raise SignatureNonceUsed()
        return signed.access_key_id

    def verify_signature(self, request: RpcRequest) -> SignedRequest:
        """Steps 1-3 (no side effects)."""
        signed = parse_signed_request(request)
        credential = self.keys.current().find(signed.access_key_id, signed.security_token)
        if credential is None or (credential.expires_at is not None and credential.expires_at <= self.clock()):
            raise AccessKeyNotFound()
        if not signature_matches(signed, credential.secret):
            raise SignatureDoesNotMatch(signed.string_to_sign)
        return signed

    def check_fresh_and_allowed(self, signed: SignedRequest, action: str) -> None:
        """Steps 4-5."""
        try:
            sent_at = parse_iso8601(signed.timestamp)
        except ValueError as exc:
            raise IncompleteSignature(signed.string_to_sign) from exc
        if abs(self.clock() - sent_at) > self.window_s:
            raise TimestampExpired()
        credential = self.keys.current().find(signed.access_key_id, signed.security_token)
        if credential is None or not credential.allows(action):
            raise NoPermissionAccess()

    def install_sighup(self) -> None:
        """``kill -HUP`` re-reads the keys file (main thread only; mtime checks work everywhere)."""
        if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
            return

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.keys.request_reload()

        self._previous_sighup = signal.signal(signal.SIGHUP, on_hup)

    async def close(self) -> None:
        if self._previous_sighup is not None:
            signal.signal(signal.SIGHUP, self._previous_sighup)
            self._previous_sighup = None
        await self.nonces.close()


def create_signature_authenticator(settings: Settings) -> SignatureAuthenticator:
    assert settings.access_keys_file is not None
    keys = KeyStore(settings.access_keys_file)
    nonces: NonceStore
    if settings.redis_url:
        nonces = RedisNonceStore(settings.redis_url)
        log.info("signature nonces kept in Redis")
    else:
        nonces = MemoryNonceStore(settings.nonce_cache_size)
        log.info("signature nonces kept in memory (one process; set COMPAREFACES_REDIS_URL to share them)")
    authenticator = SignatureAuthenticator(keys, nonces, window_s=settings.signature_window_s)
    authenticator.install_sighup()
    return authenticator
