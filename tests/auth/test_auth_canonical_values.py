"""One canonical value for what is signed and what is stored: a captured request cannot be replayed by
spelling a signed field differently, stored fields are bounded, and the signed action wins.

Replays the official SDKs' captures (``tests/fixtures/sdk-wire``) with the bytes an attacker would add.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from app.errors import ApiError, IncompleteSignature, SignatureNonceUsed
from tests.auth.test_auth_wire_replay import (
    CAPTURES,
    KEY_ID,
    WIRE,
    Wire,
    authenticator,
    capture_time,
    parse_wire,
    to_rpc,
)

V3_CAPTURES = [name for name in CAPTURES if "-v3-" in name]
RPC_QUERY_CAPTURES = ["core-ak.http", "tea-v2-ak.http"]
# Characters str.strip() removes but HTTP does not allow around (or in) a field value, and C1/NBSP.
JUNK = ["\x1d", "\x1c", "\x1e", "\x1f", "\x0b", "\x0c", "\x85", "\xa0", "\x00", "\x7f"]


def with_header(wire: Wire, name: str, value: str) -> Wire:
    headers = tuple((n, value if n.lower() == name else v) for n, v in wire.headers)
    return replace(wire, headers=headers)


def header(wire: Wire, name: str) -> str:
    return next(v for n, v in wire.headers if n.lower() == name)


def run(auth: object, wire: Wire) -> str | None:
    return asyncio.run(auth.authenticate(to_rpc(wire)))  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", V3_CAPTURES)
@pytest.mark.parametrize("junk", JUNK, ids=[f"{ord(c):02x}" for c in JUNK])
def test_v3_nonce_with_extra_bytes_is_not_a_new_nonce(name: str, junk: str, tmp_path: Path) -> None:
    wire = parse_wire((WIRE / name).read_bytes())
    auth = authenticator(tmp_path, capture_time(to_rpc(wire)))
    assert run(auth, wire) == KEY_ID
    for spelled in (header(wire, "x-acs-signature-nonce") + junk, junk + header(wire, "x-acs-signature-nonce")):
        with pytest.raises(IncompleteSignature):
            run(auth, with_header(wire, "x-acs-signature-nonce", spelled))


@pytest.mark.parametrize("name", V3_CAPTURES)
@pytest.mark.parametrize("pad", [" ", "\t", " \t "])
def test_v3_nonce_padded_with_http_whitespace_is_the_same_nonce(name: str, pad: str, tmp_path: Path) -> None:
    wire = parse_wire((WIRE / name).read_bytes())
    auth = authenticator(tmp_path, capture_time(to_rpc(wire)))
    assert run(auth, wire) == KEY_ID
    with pytest.raises(SignatureNonceUsed):
        run(auth, with_header(wire, "x-acs-signature-nonce", header(wire, "x-acs-signature-nonce") + pad))


@pytest.mark.parametrize("name", V3_CAPTURES)
def test_v3_signed_header_sent_twice_is_refused(name: str, tmp_path: Path) -> None:
    wire = parse_wire((WIRE / name).read_bytes())
    nonce = ("x-acs-signature-nonce", "0123456789abcdef0123456789abcdef")
    with pytest.raises(IncompleteSignature):
        run(authenticator(tmp_path, capture_time(to_rpc(wire))), replace(wire, headers=(*wire.headers, nonce)))


@pytest.mark.parametrize("name", RPC_QUERY_CAPTURES)
@pytest.mark.parametrize("junk", ["%1D", "%85", "%C2%85", "%C2%A0", "%00", "%20", "+"])
def test_rpc_nonce_with_extra_bytes_is_refused(name: str, junk: str, tmp_path: Path) -> None:
    wire = parse_wire((WIRE / name).read_bytes())
    auth = authenticator(tmp_path, capture_time(to_rpc(wire)))
    assert run(auth, wire) == KEY_ID
    path, _, query = wire.target.partition("?")
    spelled = query.replace("SignatureNonce=", "SignatureNonce=" + junk, 1)
    with pytest.raises(ApiError) as caught:
        run(auth, replace(wire, target=f"{path}?{spelled}"))
    assert isinstance(caught.value, IncompleteSignature), caught.value.code


@pytest.mark.parametrize("size", [129, 1_000_000])
def test_oversized_nonce_is_refused_before_it_is_signed_or_stored(size: int, tmp_path: Path) -> None:
    wire = parse_wire((WIRE / "core-ak.http").read_bytes())
    path, _, query = wire.target.partition("?")
    long_query = "&".join(
        f"SignatureNonce={'a' * size}" if pair.startswith("SignatureNonce=") else pair for pair in query.split("&")
    )
    with pytest.raises(IncompleteSignature) as caught:
        run(authenticator(tmp_path, capture_time(to_rpc(wire))), replace(wire, target=f"{path}?{long_query}"))
    assert "aaaa" not in caught.value.message


def test_second_signature_parameter_is_refused_without_echoing_the_request(tmp_path: Path) -> None:
    wire = parse_wire((WIRE / "core-ak.http").read_bytes())
    doubled = replace(wire, body=wire.body + b"&Signature=c2Vjb25k&Secret=ZZZ-marker")
    with pytest.raises(IncompleteSignature) as caught:
        run(authenticator(tmp_path, capture_time(to_rpc(wire))), doubled)
    assert "marker" not in caught.value.message and "SourceImageValue" not in caught.value.message


@pytest.mark.parametrize("name", ["core-ak.http", "tea-v2-ak.http", "js-popcore-ak.http"])
def test_rpc_unsigned_action_and_version_headers_do_not_override_the_signed_parameters(name: str) -> None:
    wire = parse_wire((WIRE / name).read_bytes())
    forged = with_header(with_header(wire, "x-acs-action", "DescribeOssUploadToken"), "x-acs-version", "2099-01-01")
    if not any(n.lower() == "x-acs-action" for n, _ in wire.headers):
        forged = replace(forged, headers=(*forged.headers, ("x-acs-action", "Other"), ("x-acs-version", "2099")))
    rpc = to_rpc(forged)
    assert (rpc.action, rpc.version) == ("CompareFaces", "2019-03-07")


@pytest.mark.parametrize("name", V3_CAPTURES)
def test_v3_signed_action_header_wins(name: str) -> None:
    wire = parse_wire((WIRE / name).read_bytes())
    rpc = to_rpc(replace(wire, target="/?Action=Other&Version=2099-01-01"))
    assert (rpc.action, rpc.version) == ("CompareFaces", "2019-03-07")
