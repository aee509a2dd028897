"""Pure functions that rebuild what an official SDK signed. No I/O, no clock, no key store.

Two steps, cheap first, so that an unknown key or a stale timestamp is refused before any work that
grows with the body:

1. ``parse_claim`` reads the claim a request makes (scheme, key id, token, nonce, timestamp,
   signature) from its headers and parameters. Every value is taken in ONE canonical form, the same
   one the signature covers and the nonce store keys on: header values lose only the spaces and tabs
   HTTP allows around them, and a signed value with a character HTTP does not allow in a field value
   (controls, DEL, anything outside ASCII), a nonce outside 1-128 visible ASCII characters, or a
   common parameter sent twice is refused (``IncompleteSignature``) before it can be signed or stored.
2. ``build_signed_request`` adds the server's own string to sign (RPC v1: over every parameter, the
   body's included; V3: over the canonical request and the body's SHA-256).

``signature_matches`` then checks the claim with a secret. See ``reference/signatures.md`` in the
shared reference material for the two schemes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import quote

from app.errors import IncompleteSignature, MissingParameter
from app.wire.request import RpcRequest

V3_ALGORITHM = "ACS3-HMAC-SHA256"
# V3 algorithm -> the hash of its canonical request, body and HMAC. The SDKs can also send
# ACS3-RSA-SHA256, signed with a private key whose public half the keys file does not hold: refused.
V3_HASHES = {V3_ALGORITHM: "sha256"}
if "sm3" in hashlib.algorithms_available:  # China's national hash (OpenSSL's default provider)
    V3_HASHES["ACS3-HMAC-SM3"] = "sm3"
_V3_AUTH = re.compile(
    r"^(ACS3-HMAC-SHA256|ACS3-HMAC-SM3)[ \t]+Credential=([^,\s]+)[ \t]*,[ \t]*SignedHeaders=([^,\s]*)[ \t]*,[ \t]*"
    r"Signature=([0-9a-fA-F]{64})$",
    re.ASCII,
)
# Headers that change what the request means: when present they must be covered by the signature.
V3_MUST_SIGN = ("x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-security-token")
# RPC v1 common parameters that may appear once only (query and body together).
RPC_SINGLE = ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "SecurityToken", "Action", "Version")

HTTP_WHITESPACE = " \t"
# What a signed field may hold: visible ASCII, with inner spaces and tabs (RFC 9110 field-content,
# less obs-text, which nothing signs and which decodes differently on each side).
SIGNED_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?", re.ASCII)
NONCE = re.compile(r"[\x21-\x7e]{1,128}", re.ASCII)  # the SDKs send 32-64 hex or UUID characters
MAX_TIMESTAMP_CHARS = 64
MAX_TOKEN_CHARS = 8192  # STS tokens run to about 1-2 KB

Scheme = Literal["rpc", "v3"]


@dataclass(frozen=True)
class SignedRequest:
    scheme: Scheme
    access_key_id: str
    security_token: str  # "" when none was sent
    signature: str
    timestamp: str
    nonce: str
    string_to_sign: str = ""  # filled by build_signed_request
    canonical_request: str = ""  # V3 only
    body_hash_ok: bool = True  # V3: x-acs-content-sha256 (when sent) equals sha256(body)
    signed_headers: tuple[str, ...] = ()  # V3 only
    algorithm: str = V3_ALGORITHM  # V3 only


def pct(text: str) -> str:
    """RFC 3986 percent-encoding of the UTF-8 bytes; only ``A-Z a-z 0-9 - _ . ~`` stay."""
    return quote(text, safe="-_.~")


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """Sorted ``pct(k)=pct(v)`` joined by ``&`` (stable for repeated keys)."""
    return "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(pairs, key=lambda pair: pair[0]))


def canonical_header_value(value: str) -> str:
    """A header value as it is signed and stored: without the spaces and tabs around it, nothing else."""
    return value.strip(HTTP_WHITESPACE)


def signed_value_ok(value: str) -> bool:
    return SIGNED_VALUE.fullmatch(value) is not None


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
    header_lines = "".join(f"{name}:{canonical_header_value(headers.get(name, ''))}\n" for name in signed_headers)
    return "\n".join([method.upper(), "/", canonical_query(query), header_lines, ";".join(signed_headers), body_sha256])


def v3_string_to_sign(canonical_request: str, algorithm: str = V3_ALGORITHM) -> str:
    return f"{algorithm}\n{hashlib.new(V3_HASHES[algorithm], canonical_request.encode()).hexdigest()}"


def v3_signature(secret: str, string_to_sign: str, algorithm: str = V3_ALGORITHM) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), V3_HASHES[algorithm]).hexdigest()


def signature_matches(signed: SignedRequest, secret: str) -> bool:
    if signed.scheme == "rpc":
        expected = rpc_signature(secret, signed.string_to_sign)
        return hmac.compare_digest(expected.encode(), signed.signature.encode())
    expected = v3_signature(secret, signed.string_to_sign, signed.algorithm)
    return signed.body_hash_ok and hmac.compare_digest(expected.encode(), signed.signature.lower().encode())


def detect_scheme(request: RpcRequest) -> Scheme | None:
    """V3 when an ``Authorization: ACS3-HMAC-SHA256`` (or SM3) header is sent, RPC v1 when a ``Signature`` is."""
    if request.headers.get("authorization", "").lstrip(HTTP_WHITESPACE).startswith(tuple(V3_HASHES)):
        return "v3"
    if any(k == "Signature" for k, _ in request.query_params + request.body_params):
        return "rpc"
    return None


def parse_claim(request: RpcRequest) -> SignedRequest:
    """The signature claim of ``request``, without its string to sign (cheap: no work over the body).

    Raises ``MissingParameter`` (unsigned, or a common parameter missing) or ``IncompleteSignature``
    (malformed, or a value that cannot be signed and stored as it was sent).
    """
    scheme = detect_scheme(request)
    if scheme == "v3":
        return _claim_v3(request)
    if scheme == "rpc":
        return _claim_rpc(request)
    if "authorization" in request.headers:
        raise IncompleteSignature()
    raise MissingParameter("AccessKeyId" if "AccessKeyId" not in request.params else "Signature")


def build_signed_request(request: RpcRequest, claim: SignedRequest, *, body_hash: str = "") -> SignedRequest:
    """``claim`` with the server's string to sign (work that grows with the body: run it off the loop).

    V3: ``body_hash`` stands in for the body's hash when given (the declared one, before the body
    has arrived); the body's own hash is checked once it has.
    """
    if claim.scheme == "rpc":
        pairs = request.query_params + request.body_params
        return replace(claim, string_to_sign=rpc_string_to_sign(request.method, pairs))
    body_sha256 = body_hash or hashlib.new(V3_HASHES[claim.algorithm], request.body).hexdigest()  # SM3 under SM3
    canonical = v3_canonical_request(
        request.method, request.query_params, dict(request.headers), list(claim.signed_headers), body_sha256
    )
    sent_hash = canonical_header_value(request.headers.get("x-acs-content-sha256", ""))
    return replace(
        claim,
        string_to_sign=v3_string_to_sign(canonical, claim.algorithm),
        canonical_request=canonical,
        body_hash_ok=not sent_hash or hmac.compare_digest(sent_hash.lower().encode(), body_sha256.encode()),
    )


def parse_signed_request(request: RpcRequest) -> SignedRequest:
    """The claim of ``request`` and the string to sign the server rebuilds from it (both steps)."""
    return build_signed_request(request, parse_claim(request))


def _claim_rpc(request: RpcRequest) -> SignedRequest:
    pairs = request.query_params + request.body_params
    for name in RPC_SINGLE:
        if sum(1 for k, _ in pairs if k == name) > 1:
            raise IncompleteSignature()
    if not request.params.get("Signature"):
        raise IncompleteSignature()
    for name in ("AccessKeyId", "SignatureNonce", "Timestamp"):
        if not request.params.get(name):
            raise MissingParameter(name)
    method = request.params.get("SignatureMethod", "HMAC-SHA1")
    version = request.params.get("SignatureVersion", "1.0")
    if method != "HMAC-SHA1" or version != "1.0":
        raise IncompleteSignature()
    claim = SignedRequest(
        scheme="rpc",
        access_key_id=request.params["AccessKeyId"],
        security_token=request.params.get("SecurityToken", ""),
        signature=request.params["Signature"],
        timestamp=request.params["Timestamp"],
        nonce=request.params["SignatureNonce"],
    )
    _check_stored_values(claim)
    return claim


def _claim_v3(request: RpcRequest) -> SignedRequest:
    match = _V3_AUTH.match(canonical_header_value(request.headers["authorization"]))
    if match is None:
        raise IncompleteSignature()
    algorithm, key_id, signed_list, signature = match.groups()
    if algorithm not in V3_HASHES:
        raise IncompleteSignature()
    signed_headers = tuple(signed_list.lower().split(";")) if signed_list else ()
    if any(name in request.duplicate_headers for name in (*signed_headers, *V3_MUST_SIGN, "authorization")):
        raise IncompleteSignature()
    if any(name in request.headers and name not in signed_headers for name in V3_MUST_SIGN):
        raise IncompleteSignature()
    if not all(signed_value_ok(canonical_header_value(request.headers.get(name, "-"))) for name in signed_headers):
        raise IncompleteSignature()
    for name in ("x-acs-date", "x-acs-signature-nonce"):
        if not canonical_header_value(request.headers.get(name, "")):
            raise MissingParameter(name)
    claim = SignedRequest(
        scheme="v3",
        access_key_id=key_id,
        security_token=canonical_header_value(request.headers.get("x-acs-security-token", "")),
        signature=signature,
        timestamp=canonical_header_value(request.headers["x-acs-date"]),
        nonce=canonical_header_value(request.headers["x-acs-signature-nonce"]),
        signed_headers=signed_headers,
        algorithm=algorithm,
    )
    _check_stored_values(claim)
    return claim


def _check_stored_values(claim: SignedRequest) -> None:
    """The values that reach the nonce store or a comparison are exactly what was signed, and bounded."""
    if NONCE.fullmatch(claim.nonce) is None:
        raise IncompleteSignature()
    if len(claim.timestamp) > MAX_TIMESTAMP_CHARS or not signed_value_ok(claim.timestamp):
        raise IncompleteSignature()
    token = claim.security_token
    if token and (len(token) > MAX_TOKEN_CHARS or not signed_value_ok(token)):
        raise IncompleteSignature()
    if not signed_value_ok(claim.access_key_id) or len(claim.access_key_id) > 128:
        raise IncompleteSignature()
