"""The pure parts of the upload flow: tokens, addressing, object names, signature parsing."""

from __future__ import annotations

import pytest

from app.oss.errors import AccessDenied, InvalidAccessKeyId, InvalidArgument, InvalidObjectName, InvalidSecurityToken
from app.oss.service import address, check_key
from app.oss.signatures import parse_authorization
from app.oss.tokens import TokenIssuer

ISSUER = TokenIssuer(b"k" * 32)


def test_token_round_trip_and_scope() -> None:
    scope, secret, token = ISSUER.issue("uploads-bucket", "uploads/abc", 2_000_000_000.7)
    checked, checked_secret = ISSUER.verify(scope.key_id, token, now=1_000_000_000)
    assert checked == scope and checked_secret == secret and scope.expires_at == 2_000_000_000
    assert scope.allows("uploads-bucket", "uploads/abc/face.jpg")
    outside = [("other", "uploads/abc/f.jpg"), ("uploads-bucket", "uploads/abc"), ("uploads-bucket", "uploads/abcd/f")]
    assert not any(scope.allows(bucket, key) for bucket, key in outside)


def test_tokens_do_not_verify_under_another_secret_or_key() -> None:
    scope, _, token = ISSUER.issue("b-b", "uploads/abc", 2_000_000_000)
    other, _, _ = ISSUER.issue("b-b", "uploads/abc", 2_000_000_000)
    with pytest.raises(InvalidSecurityToken):
        TokenIssuer(b"x" * 32).verify(scope.key_id, token, now=0)
    with pytest.raises(InvalidSecurityToken):
        ISSUER.verify(other.key_id, token, now=0)
    for garbage in ("a.b", "....", "%%%.%%%", token + "x"):
        with pytest.raises(InvalidSecurityToken):
            ISSUER.verify(scope.key_id, garbage, now=0)
    for key_id, sent in (("LTAI5tPERMANENT", token), (scope.key_id, "")):
        with pytest.raises(InvalidAccessKeyId):
            ISSUER.verify(key_id, sent, now=0)


@pytest.mark.parametrize(
    ("path", "host", "expected"),
    [
        ("/up-loads/uploads/a/b.jpg", "127.0.0.1:8080", ("up-loads", "uploads/a/b.jpg")),  # path-style
        ("/uploads/a/b.jpg", "up-loads.faces.internal:8080", ("up-loads", "uploads/a/b.jpg")),  # virtual-hosted
        ("/uploads/a/b.jpg", "other.oss-cn-hangzhou.aliyuncs.com", ("other", "uploads/a/b.jpg")),
        ("/other/uploads/a.jpg", "127.0.0.1:8080", ("other", "uploads/a.jpg")),  # path-style, another bucket
        ("/other/uploads/a.jpg", "[::1]:8080", ("other", "uploads/a.jpg")),
    ],
)
def test_addressing(path: str, host: str, expected: tuple[str, str]) -> None:
    assert address(path, host, "up-loads") == expected


@pytest.mark.parametrize("key", ["", "a//b.jpg", "a/../b.jpg", "./a.jpg", "a/", "a\\b.jpg", "a\nb", "x" * 1024])
def test_object_names_that_are_refused(key: str) -> None:
    with pytest.raises(InvalidObjectName):
        check_key(key)


def test_authorization_headers() -> None:
    v1 = parse_authorization("OSS STS.abc:c2lnbmF0dXJl")
    assert (v1.scheme, v1.access_key_id, v1.signature) == ("v1", "STS.abc", "c2lnbmF0dXJl")
    v4 = parse_authorization(
        "OSS4-HMAC-SHA256 Credential=STS.abc/20261203/cn-hangzhou/oss/aliyun_v4_request,"
        "AdditionalHeaders=host;range,Signature=" + "0" * 64
    )
    assert (v4.access_key_id, v4.date, v4.region, v4.product) == ("STS.abc", "20261203", "cn-hangzhou", "oss")
    assert v4.additional_headers == ("host", "range")
    with pytest.raises(AccessDenied):
        parse_authorization("")
    for bad in ("Bearer x", "OSS nocolon", "OSS4-HMAC-SHA256 Credential=a/b, Signature=00"):
        with pytest.raises(InvalidArgument):
            parse_authorization(bad)
