"""Upload credentials that the server can check without remembering them (any replica, no store).

``DescribeOssUploadToken`` hands out an STS-shaped triple:

* ``Key``: ``STS.`` and 24 random base62 characters, new for every token;
* ``Secret``: derived from the Key with the server's token secret (HMAC-SHA256), so it need not
  be stored;
* ``Token``: the scope (Key, bucket, path prefix, expiry, the access key it was issued to) in
  base64url JSON, then ``.`` and its HMAC-SHA256 under the server's token secret.

An upload names the Key and sends the Token (``x-oss-security-token``); the server checks the
Token's MAC and that it names this Key, rebuilds the Secret, and verifies the OSS signature with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import string
from dataclasses import dataclass

from app.oss.errors import InvalidAccessKeyId, InvalidSecurityToken, SecurityTokenExpired

BASE62 = string.ascii_letters + string.digits
KEY_PREFIX = "STS."
TOKEN_VERSION = 1


@dataclass(frozen=True)
class UploadScope:
    key_id: str
    bucket: str
    path: str  # objects may be written under ``path + "/"``
    expires_at: float  # epoch seconds
    owner: str = ""  # the access key the token was issued to ("": open mode); its upload budget applies

    def allows(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.path + "/") and len(key) > len(self.path) + 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _random(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


class TokenIssuer:
    """Issues and checks upload tokens with one secret (the same on every replica)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, text: str) -> bytes:
        return hmac.new(self._secret, f"{purpose}\n{text}".encode(), hashlib.sha256).digest()

    def secret_for(self, key_id: str) -> str:
        return _b64(self._mac("secret", key_id))[:32]

    def issue(self, bucket: str, path: str, expires_at: float, owner: str = "") -> tuple[UploadScope, str, str]:
        """A new scope with its Secret and Token."""
        scope = UploadScope(KEY_PREFIX + _random(24), bucket, path, float(int(expires_at)), owner)  # whole seconds
        claims = {"v": TOKEN_VERSION, "k": scope.key_id, "b": bucket, "p": path, "e": int(expires_at), "o": owner}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        token = f"{payload}.{_b64(self._mac('token', payload))}"
        return scope, self.secret_for(scope.key_id), token

    def verify(self, key_id: str, token: str, now: float) -> tuple[UploadScope, str]:
        """The scope and Secret of ``token`` presented with ``key_id``; raises the OSS error a
        caller would get from OSS for an unknown key, a forged or mismatched token, or an expired one."""
        if not key_id.startswith(KEY_PREFIX):
            raise InvalidAccessKeyId(OSSAccessKeyId=key_id)
        if not token:
            raise InvalidAccessKeyId(OSSAccessKeyId=key_id)
        payload, _, mac = token.partition(".")
        try:
            given = _unb64(mac)
            claims = json.loads(_unb64(payload)) if hmac.compare_digest(given, self._mac("token", payload)) else None
        except (binascii.Error, ValueError, UnicodeDecodeError):
            claims = None
        if not isinstance(claims, dict) or claims.get("v") != TOKEN_VERSION or claims.get("k") != key_id:
            raise InvalidSecurityToken(SecurityToken=token)
        scope = UploadScope(key_id, str(claims["b"]), str(claims["p"]), float(claims["e"]), str(claims.get("o", "")))
        if scope.expires_at <= now:
            raise SecurityTokenExpired(SecurityToken=token)
        return scope, self.secret_for(key_id)


def new_upload_path(prefix: str) -> str:
    """A fresh path for one token: ``<prefix>/<22 random base62 characters>``."""
    return f"{prefix}/{_random(22)}"
