"""Replay the bytes the official SDKs sent (``tests/fixtures/sdk-wire``) through the real verifier.

Every capture verifies with the test secret and rebuilds the documented string to sign; a one-byte
change to any signed part, or another secret, makes it fail. Freshness runs on an injected clock set
to the capture time (2026-11-25 ~06:26Z).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from starlette.requests import Request

from app.auth.authenticator import SignatureAuthenticator
from app.auth.canonical import parse_signed_request, signature_matches
from app.auth.keys import KeyStore, parse_iso8601
from app.auth.nonces import MemoryNonceStore
from app.errors import (
    AccessKeyNotFound,
    ApiError,
    IncompleteSignature,
    SecurityTokenExpired,
    SecurityTokenMalformed,
    SignatureDoesNotMatch,
    SignatureNonceUsed,
    TimestampExpired,
)
from app.wire.request import RpcRequest, build_rpc_request

WIRE = Path(__file__).resolve().parents[1] / "fixtures" / "sdk-wire"
KEY_ID, SECRET, TOKEN = "LTAI5tFAKEKEYID0000001", "FakeSecret0123456789abcdefABCDEF", "CAIS+fakeSTS/token=="
CAPTURES = sorted(p.name for p in WIRE.glob("*.http"))


@dataclass(frozen=True)
class Wire:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def dechunk(data: bytes) -> bytes:
    out, rest = b"", data
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, rest = out + rest[:size], rest[size + 2 :]


def parse_wire(raw: bytes) -> Wire:
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ")
    headers = tuple((name.strip(), value.strip()) for name, value in (line.split(":", 1) for line in lines))
    if any(n.lower() == "transfer-encoding" and "chunked" in v.lower() for n, v in headers):
        body = dechunk(body)
    return Wire(method, target, headers, body)


def to_rpc(wire: Wire) -> RpcRequest:
    """Through the same ``build_rpc_request`` the server uses."""
    path, _, query = wire.target.partition("?")
    scope = {
        "type": "http",
        "method": wire.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode("latin-1"),
        "headers": [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in wire.headers],
        "server": ("127.0.0.1", 18080),
    }
    return build_rpc_request(Request(scope), wire.body)


def load(name: str) -> RpcRequest:
    return to_rpc(parse_wire((WIRE / name).read_bytes()))


def expected_blocks() -> dict[str, dict[str, str]]:
    text = (WIRE / "expected-strings-to-sign.txt").read_text()
    blocks: dict[str, dict[str, str]] = {}
    for chunk in re.split(r"^== ", text, flags=re.M)[1:]:
        name = chunk.split(":", 1)[0]
        canonical = re.search(r"-- CanonicalRequest:\n(.*?)\n-- StringToSign:", chunk, re.S)
        to_sign = re.search(r"-- StringToSign:\n(.*?)\n*\Z", chunk, re.S)
        assert to_sign is not None
        blocks[name] = {
            "string_to_sign": to_sign.group(1),
            "canonical": canonical.group(1) if canonical else "",
            "sent": re.search(r"sent=(\S+)", chunk).group(1),  # type: ignore[union-attr]
        }
    return blocks


def capture_time(rpc: RpcRequest) -> float:
    return parse_iso8601(rpc.headers.get("x-acs-date") or rpc.params["Timestamp"])


def authenticator(
    tmp_path: Path, now: float, *, sts_expiration: str = "2026-11-25T12:00:00Z"
) -> SignatureAuthenticator:
    keys_file = tmp_path / "keys.json"
    sts = {"AccessKeyId": KEY_ID, "AccessKeySecret": SECRET, "SecurityToken": TOKEN, "Expiration": sts_expiration}
    keys_file.write_text(json.dumps({"keys": [{"AccessKeyId": KEY_ID, "AccessKeySecret": SECRET}], "sts": [sts]}))
    keys_file.chmod(0o600)
    return SignatureAuthenticator(KeyStore(keys_file), MemoryNonceStore(1000), clock=lambda: now)


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_rebuilds_the_documented_string_to_sign(name: str) -> None:
    expected = expected_blocks()[name]
    signed = parse_signed_request(load(name))
    assert signed.string_to_sign == expected["string_to_sign"]
    assert signed.canonical_request == expected["canonical"]
    assert signed.signature == expected["sent"]
    assert signed.body_hash_ok
    assert signature_matches(signed, SECRET)
    assert not signature_matches(signed, SECRET[:-1] + "G")
    assert bool(signed.security_token) == name.endswith("-sts.http")


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_is_fresh_once_at_capture_time(name: str, tmp_path: Path) -> None:
    rpc = load(name)
    now = capture_time(rpc)
    auth = authenticator(tmp_path, now + 60)
    assert asyncio.run(auth.authenticate(rpc)) == KEY_ID
    with pytest.raises(SignatureNonceUsed):
        asyncio.run(auth.authenticate(rpc))
    with pytest.raises(TimestampExpired):
        asyncio.run(authenticator(tmp_path, now + 16 * 60).authenticate(rpc))
    with pytest.raises(TimestampExpired):
        asyncio.run(authenticator(tmp_path, now - 16 * 60).authenticate(rpc))


@pytest.mark.parametrize("name", [n for n in CAPTURES if n.endswith("-sts.http")])
def test_expired_sts_credential_is_refused(name: str, tmp_path: Path) -> None:
    rpc = load(name)
    auth = authenticator(tmp_path, capture_time(rpc), sts_expiration="2026-11-25T06:00:00Z")
    with pytest.raises(SecurityTokenExpired) as caught:
        asyncio.run(auth.authenticate(rpc))
    assert (caught.value.code, caught.value.status) == ("InvalidSecurityToken.Expired", 400)


def bump(text: str) -> str:
    """Change one byte: the first letter or digit becomes another of its kind."""
    for i, ch in enumerate(text):
        if ch.isdigit():
            return text[:i] + ("1" if ch != "1" else "2") + text[i + 1 :]
        if ch.isalpha() and ch.isascii():
            other = "x" if ch.lower() != "x" else "y"
            return text[:i] + (other.upper() if ch.isupper() else other) + text[i + 1 :]
    raise AssertionError(f"nothing to change in {text!r}")


def bump_pairs(encoded: str) -> list[tuple[str, str]]:
    """(name, encoded) for each ``k=v`` of a urlencoded string with one byte of it changed."""
    items = encoded.split("&")
    out = []
    for i, item in enumerate(items):
        key, _, value = item.partition("=")
        changed = f"{key}={bump(value)}" if value else f"{bump(key)}="
        out.append((key, "&".join(items[:i] + [changed] + items[i + 1 :])))
    return out


def mutations(wire: Wire) -> list[tuple[str, Wire]]:
    """Every signed part of the capture, each with one byte changed."""
    out: list[tuple[str, Wire]] = []
    path, _, query = wire.target.partition("?")
    if query:
        out += [(f"query {k}", replace(wire, target=f"{path}?{q}")) for k, q in bump_pairs(query)]
    if wire.body:
        out += [(f"body {k}", replace(wire, body=b.encode())) for k, b in bump_pairs(wire.body.decode())]
    auth = dict((n.lower(), v) for n, v in wire.headers).get("authorization", "")
    if auth:
        signed_headers = re.search(r"SignedHeaders=([^,]+)", auth).group(1).split(";")  # type: ignore[union-attr]
        for index, (name, value) in enumerate(wire.headers):
            lower = name.lower()
            if lower in signed_headers:
                changed = (*wire.headers[:index], (name, bump(value)), *wire.headers[index + 1 :])
                out.append((f"header {lower}", replace(wire, headers=changed)))
            if lower == "authorization":
                for part in ("Credential=", "Signature="):
                    at = value.index(part) + len(part)
                    first = "0" if value[at] != "0" else "1"  # keeps the hex signature hex
                    new = value[:at] + (bump(value[at:]) if part == "Credential=" else first + value[at + 1 :])
                    changed = (*wire.headers[:index], (name, new), *wire.headers[index + 1 :])
                    out.append((f"authorization {part}", replace(wire, headers=changed)))
    return out


def expected_error(part: str) -> type[ApiError]:
    if part.endswith(("AccessKeyId", "Credential=")):
        return AccessKeyNotFound  # another key, whatever token comes with it
    if part.endswith(("SecurityToken", "x-acs-security-token")):
        return SecurityTokenMalformed  # a token no credential has
    if part.endswith(("SignatureMethod", "SignatureVersion")):
        return IncompleteSignature  # only HMAC-SHA1 / 1.0 exist
    if part.endswith(("Timestamp", "x-acs-date")):
        return TimestampExpired  # the year changed: checked before the (costlier) signature
    return SignatureDoesNotMatch


@pytest.mark.parametrize("name", CAPTURES)
def test_one_byte_change_to_a_signed_part_fails(name: str, tmp_path: Path) -> None:
    wire = parse_wire((WIRE / name).read_bytes())
    now = capture_time(to_rpc(wire))
    found = mutations(wire)
    assert len(found) >= 8
    wrong = []
    for part, changed in found:
        auth = authenticator(tmp_path, now)
        try:
            asyncio.run(auth.authenticate(to_rpc(changed)))
            wrong.append(f"{part}: accepted")
        except ApiError as error:
            if not isinstance(error, expected_error(part)):
                wrong.append(f"{part}: {error.code}")
    assert not wrong, wrong


def test_server_string_to_sign_ends_the_mismatch_message(tmp_path: Path) -> None:
    wire = parse_wire((WIRE / "core-ak.http").read_bytes())
    rpc = to_rpc(wire)
    path, _, query = wire.target.partition("?")
    tampered = to_rpc(replace(wire, target=path + "?" + query.replace("Format=JSON", "Format=XML")))
    with pytest.raises(SignatureDoesNotMatch) as caught:
        asyncio.run(authenticator(tmp_path, capture_time(rpc)).authenticate(tampered))
    assert caught.value.message.endswith("server string to sign is:" + parse_signed_request(tampered).string_to_sign)
    assert dict(parse_qsl(query))["Format"] == "JSON"
