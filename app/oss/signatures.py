"""OSS request signatures, V1 (``OSS AccessKeyId:Signature``, HMAC-SHA1) and V4
(``OSS4-HMAC-SHA256 Credential=...``), rebuilt from the request as the OSS SDKs sign it.

Pure functions: no clock, no key lookup. ``parse_authorization`` reads the claim; ``string_to_sign``
rebuilds what the client signed; ``signature_matches`` checks it with a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import quote

from app.oss.errors import AccessDenied, InvalidArgument

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_TERMINATOR = "aliyun_v4_request"
V4_SIGNED_ALWAYS = ("content-type", "content-md5")
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class OssRequest:
    """What a signature covers: the decoded bucket and key, query pairs, lower-case headers."""

    method: str
    bucket: str
    key: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Claim:
    scheme: Literal["v1", "v4"]
    access_key_id: str
    signature: str
    date: str = ""  # V4: yyyymmdd of the credential scope
    region: str = ""
    product: str = ""
    additional_headers: tuple[str, ...] = ()


def parse_authorization(value: str) -> Claim:
    """The ``Authorization`` header's claim; a missing one is anonymous (AccessDenied), a malformed
    one InvalidArgument."""
    value = value.strip()
    if not value:
        raise AccessDenied()
    if value.startswith("OSS "):
        key_id, separator, signature = value[4:].strip().rpartition(":")
        if not separator or not key_id or not signature:
            raise InvalidArgument()
        return Claim("v1", key_id, signature)
    if value.startswith(V4_ALGORITHM + " "):
        fields = {}
        for part in value[len(V4_ALGORITHM) + 1 :].split(","):
            name, _, field_value = part.strip().partition("=")
            fields[name] = field_value.strip()
        credential, signature = fields.get("Credential", ""), fields.get("Signature", "")
        scope = credential.rsplit("/", 4)
        if len(scope) != 5 or scope[4] != V4_TERMINATOR or not all(scope[:4]) or not signature:
            raise InvalidArgument()
        additional = tuple(name.strip().lower() for name in fields.get("AdditionalHeaders", "").split(";") if name)
        return Claim("v4", scope[0], signature, scope[1], scope[2], scope[3], additional)
    raise InvalidArgument()


def request_time(request: OssRequest, claim: Claim) -> float:
    """When the client says it signed (epoch seconds): ``x-oss-date`` (V4: ``yyyymmddTHHMMSSZ`` on the
    credential's day) or, for V1, ``x-oss-date`` / ``Date`` in HTTP date format."""
    stamp = request.headers.get("x-oss-date", "")
    try:
        if claim.scheme == "v4":
            moment = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            if stamp[:8] != claim.date:
                raise ValueError("credential date is not the request's")
            return moment.timestamp()
        return parsedate_to_datetime(stamp or request.headers.get("date", "")).timestamp()
    except (ValueError, TypeError) as exc:
        raise AccessDenied("OSS authentication requires a valid Date.") from exc


def _oss_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    return sorted((name, value.strip()) for name, value in headers.items() if name.startswith("x-oss-"))


def v1_string_to_sign(request: OssRequest) -> str:
    headers = request.headers
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in _oss_headers(headers))
    resource = f"/{request.bucket}/{request.key}"
    if request.query:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sorted(request.query))
    date = headers.get("x-oss-date") or headers.get("date", "")
    lines = [request.method, headers.get("content-md5", ""), headers.get("content-type", ""), date]
    return "\n".join(lines) + "\n" + canonical_headers + resource


def uri_encode(text: str, *, keep_slash: bool) -> str:
    """RFC 3986: only ``A-Z a-z 0-9 - _ . ~`` (and ``/`` in paths) stay as they are."""
    return quote(text, safe="/-_.~" if keep_slash else "-_.~")


def v4_canonical_request(request: OssRequest, additional_headers: tuple[str, ...]) -> str:
    signed = {
        name: value.strip()
        for name, value in request.headers.items()
        if name.startswith("x-oss-") or name in V4_SIGNED_ALWAYS or name in additional_headers
    }
    query = sorted((uri_encode(k, keep_slash=False), uri_encode(v, keep_slash=False)) for k, v in request.query)
    return "\n".join(
        [
            request.method,
            uri_encode(f"/{request.bucket}/{request.key}", keep_slash=True),
            "&".join(f"{k}={v}" if v else k for k, v in query),
            "".join(f"{name}:{signed[name]}\n" for name in sorted(signed)),
            ";".join(additional_headers),
            request.headers.get("x-oss-content-sha256", UNSIGNED_PAYLOAD),
        ]
    )


def v4_string_to_sign(request: OssRequest, claim: Claim) -> str:
    scope = f"{claim.date}/{claim.region}/{claim.product}/{V4_TERMINATOR}"
    digest = hashlib.sha256(v4_canonical_request(request, claim.additional_headers).encode()).hexdigest()
    return "\n".join([V4_ALGORITHM, request.headers.get("x-oss-date", ""), scope, digest])


def string_to_sign(request: OssRequest, claim: Claim) -> str:
    return v1_string_to_sign(request) if claim.scheme == "v1" else v4_string_to_sign(request, claim)


def _hmac256(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signature(secret: str, claim: Claim, text: str) -> str:
    if claim.scheme == "v1":
        return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()
    key = ("aliyun_v4" + secret).encode()
    for part in (claim.date, claim.region, claim.product, V4_TERMINATOR):
        key = _hmac256(key, part)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def signature_matches(secret: str, claim: Claim, text: str) -> bool:
    return hmac.compare_digest(signature(secret, claim, text).encode(), claim.signature.encode())


def mismatch_fields(claim: Claim, text: str, request: OssRequest) -> dict[str, str]:
    """The elements OSS adds to a SignatureDoesNotMatch error, so a client can compare its own."""
    fields = {
        "OSSAccessKeyId": claim.access_key_id,
        "SignatureProvided": claim.signature,
        "StringToSign": text,
        "StringToSignBytes": " ".join(f"{byte:02x}" for byte in text.encode()),
    }
    if claim.scheme == "v4":
        fields["CanonicalRequest"] = v4_canonical_request(request, claim.additional_headers)
    return fields
