"""Pure functions that rebuild what an official SDK signed. No I/O, no clock, no key store.

``parse_signed_request`` turns an ``RpcRequest`` into the claim it makes (key id, token, nonce,
timestamp, signature) plus the server's own string to sign; ``signature_matches`` checks the claim
with a secret. See ``/work/shared/reference/signatures.md`` for the two schemes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from app.api.request import RpcRequest
from app.errors import IncompleteSignature, MissingParameter

V3_ALGORITHM = "ACS3-HMAC-SHA256"
_V3_AUTH = re.compile(
    r"^ACS3-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]*)\s*,\s*Signature=([0-9a-fA-F]{64})\s*$"
)
# Headers that change what the request means: when present they must be covered by the signature.
V3_MUST_SIGN = ("x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-security-token")

Scheme = Literal["rpc", "v3"]


@dataclass(frozen=True)
class SignedRequest:
    scheme: Scheme
    access_key_id: str
    security_token: str  # "" when none was sent
    signature: str
    string_to_sign: str
    timestamp: str
    nonce: str
    canonical_request: str = ""  # V3 only
    body_hash_ok: bool = True  # V3: x-acs-content-sha256 (when sent) equals sha256(body)


def pct(text: str) -> str:
    """RFC 3986 percent-encoding of the UTF-8 bytes; only ``A-Z a-z 0-9 - _ . ~`` stay."""
    return quote(text, safe="-_.~")


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """Sorted ``pct(k)=pct(v)`` joined by ``&`` (stable for repeated keys)."""
    return "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(pairs, key=lambda pair: pair[0]))


def rpc_string_to_sign(method: str, params: list[tuple[str, str]]) -> str:
    unsigned = [(k, v) for k, v in params if k != "Signature"]
    return f"{method.upper()}&%2F&{pct(canonical_query(unsigned))}"


def rpc_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def v3_canonical_request(
    method: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    signed_headers: list[str],
    body_sha256: str,
) -> str:
    header_lines = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers)
    return "\n".join([method.upper(), "/", canonical_query(query), header_lines, ";".join(signed_headers), body_sha256])


def v3_string_to_sign(canonical_request: str) -> str:
    return f"{V3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def v3_signature(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def signature_matches(signed: SignedRequest, secret: str) -> bool:
    if signed.scheme == "rpc":
        expected = rpc_signature(secret, signed.string_to_sign)
        return hmac.compare_digest(expected.encode(), signed.signature.encode())
    expected = v3_signature(secret, signed.string_to_sign)
    return signed.body_hash_ok and hmac.compare_digest(expected.encode(), signed.signature.lower().encode())


def detect_scheme(request: RpcRequest) -> Scheme | None:
    """V3 when an ``Authorization: ACS3-HMAC-SHA256`` header is sent, RPC v1 when a ``Signature`` is."""
    if request.headers.get("authorization", "").lstrip().startswith(V3_ALGORITHM):
        return "v3"
    if any(k == "Signature" for k, _ in request.query_params + request.body_params):
        return "rpc"
    return None


def parse_signed_request(request: RpcRequest) -> SignedRequest:
    """The signature claim of ``request`` and the string to sign the server rebuilds from it.

    Raises ``MissingParameter`` (unsigned, or a common parameter missing) or ``IncompleteSignature``.
    """
    scheme = detect_scheme(request)
    if scheme == "v3":
        return _parse_v3(request)
    if scheme == "rpc":
        return _parse_rpc(request)
    if "authorization" in request.headers:
        raise IncompleteSignature()
    raise MissingParameter("AccessKeyId" if "AccessKeyId" not in request.params else "Signature")


def _parse_rpc(request: RpcRequest) -> SignedRequest:
    pairs = request.query_params + request.body_params
    string_to_sign = rpc_string_to_sign(request.method, pairs)
    signatures = [v for k, v in pairs if k == "Signature"]
    if len(signatures) != 1 or not signatures[0]:
        raise IncompleteSignature(string_to_sign)
    for name in ("AccessKeyId", "SignatureNonce", "Timestamp"):
        if not request.params.get(name):
            raise MissingParameter(name)
    method = request.params.get("SignatureMethod", "HMAC-SHA1")
    version = request.params.get("SignatureVersion", "1.0")
    if method != "HMAC-SHA1" or version != "1.0":
        raise IncompleteSignature(string_to_sign)
    return SignedRequest(
        scheme="rpc",
        access_key_id=request.params["AccessKeyId"],
        security_token=request.params.get("SecurityToken", ""),
        signature=signatures[0],
        string_to_sign=string_to_sign,
        timestamp=request.params["Timestamp"],
        nonce=request.params["SignatureNonce"],
    )


def _parse_v3(request: RpcRequest) -> SignedRequest:
    match = _V3_AUTH.match(request.headers["authorization"].strip())
    if match is None:
        raise IncompleteSignature()
    key_id, signed_list, signature = match.groups()
    signed_headers = signed_list.lower().split(";") if signed_list else []
    body_sha256 = hashlib.sha256(request.body).hexdigest()
    canonical = v3_canonical_request(
        request.method, request.query_params, dict(request.headers), signed_headers, body_sha256
    )
    string_to_sign = v3_string_to_sign(canonical)
    for name in ("x-acs-date", "x-acs-signature-nonce"):
        if not request.headers.get(name):
            raise MissingParameter(name)
    if any(name in request.headers and name not in signed_headers for name in V3_MUST_SIGN):
        raise IncompleteSignature(string_to_sign)
    sent_hash = request.headers.get("x-acs-content-sha256")
    return SignedRequest(
        scheme="v3",
        access_key_id=key_id,
        security_token=request.headers.get("x-acs-security-token", ""),
        signature=signature,
        string_to_sign=string_to_sign,
        timestamp=request.headers["x-acs-date"],
        nonce=request.headers["x-acs-signature-nonce"],
        canonical_request=canonical,
        body_hash_ok=sent_hash is None or hmac.compare_digest(sent_hash.lower().encode(), body_sha256.encode()),
    )
