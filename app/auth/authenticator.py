"""Signature verification for every RPC request. Checks run cheap first, so that nothing that grows
with the body is done for a caller who cannot be who they claim:

1. signed at all / well formed, every stored value canonical and bounded (``MissingParameter``,
   ``IncompleteSignature``)
2. key known (``InvalidAccessKeyId.NotFound``): permanent key, or STS credential whose token matches
   and has not expired (``MissingSecurityToken``, ``InvalidSecurityToken.Malformed``,
   ``InvalidSecurityToken.MismatchWithAccessKey``, ``InvalidSecurityToken.Expired``)
3. timestamp within the window (``InvalidTimeStamp.Expired``)
4. signature (``SignatureDoesNotMatch``, message ending with the server's string to sign); for a
   large request the body's hash, the string to sign and its HMAC are computed off the event loop
5. key enabled (``InvalidAccessKeyId.Inactive``, told only to a caller who signed with its secret) and
   allowed the action (``Error.NoPermissionAccess``)
6. nonce unused within the window (``SignatureNonceUsed``); recorded, in the key's own share of the
   store, only for requests that passed 1-5

``precheck`` runs the same steps on the head, before the body is read, as far as the head allows
(the nonce looked up, not recorded), so that a request the full check would refuse is refused with
the same error before its body takes a receive slot.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from app.auth.access import UNKNOWN_SENDER, HeadCheck
from app.auth.canonical import (
    SignedRequest,
    build_signed_request,
    canonical_header_value,
    detect_scheme,
    parse_claim,
    signature_matches,
)
from app.auth.keys import Credential, KeyStore, parse_iso8601
from app.auth.nonces import MemoryNonceStore, NonceStore, RedisNonceStore
from app.errors import (
    AccessKeyInactive,
    AccessKeyNotFound,
    IncompleteSignature,
    MissingParameter,
    MissingSecurityToken,
    NoPermissionAccess,
    SecurityTokenExpired,
    SecurityTokenMalformed,
    SecurityTokenMismatch,
    SignatureDoesNotMatch,
    SignatureNonceUsed,
    TimestampExpired,
)
from app.settings import Settings
from app.wire.request import RpcRequest

log = logging.getLogger("comparefaces.auth")

FRESHNESS_WINDOW_S = 15 * 60
DECLARED_HASH = re.compile(r"[0-9a-f]{64}")  # SHA-256 and SM3 digests alike
OFF_LOOP_BYTES = 64 * 1024  # larger requests get their signature checked in a worker thread


def check_signature(request: RpcRequest, claim: SignedRequest, secret: str, *, body_hash: str = "") -> SignedRequest:
    """``claim`` with the server's string to sign, its signature checked (``SignatureDoesNotMatch``)."""
    signed = build_signed_request(request, claim, body_hash=body_hash)
    if not signature_matches(signed, secret):
        raise SignatureDoesNotMatch(signed.string_to_sign)
    return signed


async def verify_signature(
    request: RpcRequest, claim: SignedRequest, secret: str, *, body_hash: str = ""
) -> SignedRequest:
    """:func:`check_signature`, in a worker thread when the request is large: the V3 body hash, the
    string to sign and its HMAC all grow with the request."""
    if len(request.body) + len(request.raw_query) > OFF_LOOP_BYTES:
        return await asyncio.to_thread(check_signature, request, claim, secret, body_hash=body_hash)
    return check_signature(request, claim, secret, body_hash=body_hash)


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
        claim = parse_claim(request)
        credential = self.find_credential(claim)
        self.check_fresh(claim)
        signed = await verify_signature(request, claim, credential.secret)
        if not credential.enabled:
            raise AccessKeyInactive()
        if not credential.allows(request.action):
            raise NoPermissionAccess()
        # A timestamp may lie up to one window ahead: remember the nonce for two.
        if not await self.nonces.first_use(signed.access_key_id, signed.nonce, 2 * self.window_s):
            raise SignatureNonceUsed()
        return signed.access_key_id

    async def precheck(self, head: RpcRequest) -> HeadCheck:
        """Steps 1-6 as far as the head allows, before the body is read (see ``Authenticator``); the
        nonce is only looked up, recorded by ``authenticate`` once the whole request has passed."""
        if detect_scheme(head) is None:
            return UNKNOWN_SENDER  # RPC v1 with its signature in the body
        try:
            claim = parse_claim(head)
        except MissingParameter:
            return UNKNOWN_SENDER  # common parameters in the body
        credential = self.find_credential(claim)
        self.check_fresh(claim)
        declared = canonical_header_value(head.headers.get("x-acs-content-sha256", "")).lower()
        signs_body = "x-acs-content-sha256" in claim.signed_headers and bool(DECLARED_HASH.fullmatch(declared))
        verified = claim.scheme == "v3" and signs_body
        if verified:
            await verify_signature(head, claim, credential.secret, body_hash=declared)
            if not credential.enabled:
                raise AccessKeyInactive()
            if not credential.allows(head.action):
                raise NoPermissionAccess()
        if await self.nonces.seen(claim.access_key_id, claim.nonce):
            raise SignatureNonceUsed()
        return HeadCheck(key_id=claim.access_key_id, nonce=claim.nonce, verified=verified)

    def find_credential(self, claim: SignedRequest) -> Credential:
        """Step 2. An unknown key is not found whatever token comes with it; a known one is refused
        under the STS code that says what is wrong with its token."""
        keys = self.keys.current()
        credential = keys.find(claim.access_key_id, claim.security_token)
        if credential is not None:
            if credential.expires_at is not None and credential.expires_at <= self.clock():
                raise SecurityTokenExpired()
            return credential
        if not keys.known(claim.access_key_id):
            raise AccessKeyNotFound()
        if not claim.security_token:
            raise MissingSecurityToken()  # an STS key signed without its token
        if keys.token_owner(claim.security_token) is not None:
            raise SecurityTokenMismatch()  # another credential's token
        raise SecurityTokenMalformed()

    def check_fresh(self, claim: SignedRequest) -> None:
        """Step 3."""
        try:
            sent_at = parse_iso8601(claim.timestamp)
        except ValueError as exc:
            raise IncompleteSignature() from exc
        if abs(self.clock() - sent_at) > self.window_s:
            raise TimestampExpired()

    def problem(self) -> str | None:
        """What is wrong with the keys file (re-read if it changed) or the nonce store now, or None."""
        self.keys.current()
        return self.keys.problem or self.nonces.problem()

    async def start(self) -> None:
        await self.nonces.start()

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
        nonces = RedisNonceStore(
            settings.redis_url, max_entries=settings.nonce_cache_size, max_bytes=settings.nonce_key_max_bytes
        )
        log.info("signature nonces kept in Redis")
    else:
        nonces = MemoryNonceStore(settings.nonce_cache_size, max_bytes=settings.nonce_key_max_bytes)
        log.info("signature nonces kept in memory (one process; set COMPAREFACES_REDIS_URL to share them)")
    authenticator = SignatureAuthenticator(keys, nonces, window_s=settings.signature_window_s)
    authenticator.install_sighup()
    return authenticator
