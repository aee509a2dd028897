"""The access keys file, STS credentials, reloads, permissions and ``comparefaces keys create``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from app.auth.authenticator import create_signature_authenticator
from app.auth.canonical import parse_signed_request, pct, rpc_signature, rpc_string_to_sign
from app.auth.keys import KeysFileError, KeyStore, append_key, load_keys, new_key_pair
from app.cli import main
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
)
from app.settings import Settings
from app.wire.request import RpcRequest


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    return path


def signed_rpc(key_id: str, secret: str, *, nonce: str = "n1", token: str = "", timestamp: str = "") -> RpcRequest:
    """A CompareFaces request signed the RPC v1 way, everything in the form body."""
    from datetime import datetime, timezone

    params = {
        "Action": "CompareFaces",
        "Version": "2019-03-07",
        "AccessKeyId": key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": timestamp or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "SourceImageType": "FacePic",
    }
    if token:
        params["SecurityToken"] = token
    pairs = list(params.items())
    pairs.append(("Signature", rpc_signature(secret, rpc_string_to_sign("POST", pairs))))
    body = "&".join(f"{pct(k)}={pct(v)}" for k, v in pairs).encode()
    return RpcRequest(
        "POST", "/", "", {"content-type": "application/x-www-form-urlencoded"}, body, [], pairs, dict(pairs)
    )


def test_pct_is_rfc3986() -> None:
    assert pct("a b*~é/+") == "a%20b%2A~%C3%A9%2F%2B"


def test_defaults_and_sts(tmp_path: Path) -> None:
    keys = load_keys(
        write(
            tmp_path / "k.json",
            {
                "keys": [
                    {"AccessKeyId": "A", "AccessKeySecret": "s"},
                    {"AccessKeyId": "B", "AccessKeySecret": "t", "Enabled": False, "Actions": ["Other"]},
                ],
                "sts": [
                    {
                        "AccessKeyId": "STS.X",
                        "AccessKeySecret": "secret-u",
                        "SecurityToken": "tok",
                        "Expiration": "2030-01-01T00:00:00Z",
                    }
                ],
            },
        )
    )
    a, b = keys.find("A", ""), keys.find("B", "")
    assert a is not None and a.allows("CompareFaces") and a.expires_at is None
    assert b is not None and not b.allows("CompareFaces") and not b.allows("Other")
    assert keys.find("STS.X", "") is None and keys.find("STS.X", "wrong") is None
    sts = keys.find("STS.X", "tok")
    assert sts is not None and sts.expires_at == 1893456000.0
    assert "secret-u" not in repr(sts) and "tok" not in repr(sts)


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"keys": [{"AccessKeyId": "A"}]},
        {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "s", "Enabled": "yes"}]},
        {"sts": [{"AccessKeyId": "A", "AccessKeySecret": "s", "SecurityToken": "t", "Expiration": "soon"}]},
    ],
)
def test_bad_files_are_refused(tmp_path: Path, document: object) -> None:
    with pytest.raises(KeysFileError):
        load_keys(write(tmp_path / "k.json", document))
    with pytest.raises(KeysFileError, match="does not exist"):
        load_keys(tmp_path / "missing.json")


def test_unsigned_and_malformed_requests() -> None:
    bare = RpcRequest("POST", "/", "", {}, b"", [], [("Action", "CompareFaces")], {"Action": "CompareFaces"})
    with pytest.raises(MissingParameter) as missing:
        parse_signed_request(bare)
    assert '"AccessKeyId"' in missing.value.message
    with_id = RpcRequest("POST", "/", "", {}, b"", [], [("AccessKeyId", "A")], {"AccessKeyId": "A"})
    with pytest.raises(MissingParameter) as missing:
        parse_signed_request(with_id)
    assert '"Signature"' in missing.value.message
    for header in ("ACS3-HMAC-SHA256 Credential=A", "Bearer xyz"):
        bad = RpcRequest("POST", "/", "", {"authorization": header}, b"", [], [], {})
        with pytest.raises(IncompleteSignature):
            parse_signed_request(bad)
    rpc = signed_rpc("A", "s")
    no_nonce = [(k, v) for k, v in rpc.body_params if k != "SignatureNonce"]
    with pytest.raises(MissingParameter) as missing:
        parse_signed_request(RpcRequest("POST", "/", "", {}, b"", [], no_nonce, dict(no_nonce)))
    assert '"SignatureNonce"' in missing.value.message


def test_authenticator_codes_and_reload(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = write(
        tmp_path / "k.json",
        {
            "keys": [
                {"AccessKeyId": "A", "AccessKeySecret": "secret-A"},
                {"AccessKeyId": "D", "AccessKeySecret": "secret-D", "Enabled": False},
                {"AccessKeyId": "O", "AccessKeySecret": "secret-O", "Actions": ["DescribeVerifyToken"]},
            ],
            "sts": [
                {
                    "AccessKeyId": "STS.T",
                    "AccessKeySecret": "secret-T",
                    "SecurityToken": "tok-T",
                    "Expiration": "2000-01-01T00:00:00Z",
                },
                {
                    "AccessKeyId": "STS.L",
                    "AccessKeySecret": "secret-L",
                    "SecurityToken": "tok-L",
                    "Expiration": "2999-01-01T00:00:00Z",
                },
            ],
        },
    )
    auth = create_signature_authenticator(Settings(access_keys_file=path))

    async def run(request: RpcRequest) -> str | None:
        return await auth.authenticate(request)

    assert asyncio.run(run(signed_rpc("A", "secret-A"))) == "A"
    with pytest.raises(SignatureDoesNotMatch) as mismatch:
        asyncio.run(run(signed_rpc("A", "secret-X", nonce="2")))
    assert "server string to sign is:POST&%2F&AccessKeyId%3DA%26" in mismatch.value.message
    with pytest.raises(AccessKeyNotFound):
        asyncio.run(run(signed_rpc("Z", "secret-A", nonce="3")))
    with pytest.raises(AccessKeyInactive):  # disabled: the gateway's own code
        asyncio.run(run(signed_rpc("D", "secret-D", nonce="4")))
    with pytest.raises(SignatureDoesNotMatch):  # ... told only to whoever holds the secret
        asyncio.run(run(signed_rpc("D", "secret-X", nonce="4b")))
    with pytest.raises(NoPermissionAccess):
        asyncio.run(run(signed_rpc("O", "secret-O", nonce="4c")))
    assert asyncio.run(run(signed_rpc("STS.L", "secret-L", nonce="5", token="tok-L"))) == "STS.L"
    with pytest.raises(IncompleteSignature):
        asyncio.run(run(signed_rpc("A", "secret-A", nonce="6", timestamp="yesterday")))

    # A changed file is picked up on the next request; a broken one leaves no key working.
    write(path, {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-A2"}]})
    assert asyncio.run(run(signed_rpc("A", "secret-A2", nonce="7"))) == "A"
    assert auth.problem() is None
    path.write_text("{not json")
    with pytest.raises(AccessKeyNotFound):
        asyncio.run(run(signed_rpc("A", "secret-A2", nonce="8")))
    assert "not readable JSON" in (auth.problem() or "")
    asyncio.run(auth.close())
    assert not any(s in caplog.text for s in ("secret-A", "secret-D", "secret-T", "tok-T"))


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX only")
def test_sighup_reloads_a_file_whose_stamp_did_not_change(tmp_path: Path) -> None:
    path = write(tmp_path / "k.json", {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-1"}]})
    stat = path.stat()
    auth = create_signature_authenticator(Settings(access_keys_file=path))
    try:
        with open(path, "r+") as handle:  # same inode, same size, same mtime
            handle.write(path.read_text().replace("secret-1", "secret-2"))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        with pytest.raises(SignatureDoesNotMatch):
            asyncio.run(auth.authenticate(signed_rpc("A", "secret-2")))
        os.kill(os.getpid(), signal.SIGHUP)
        assert asyncio.run(auth.authenticate(signed_rpc("A", "secret-2", nonce="n2"))) == "A"
    finally:
        asyncio.run(auth.close())
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # restored on close


def test_new_key_pair_shape() -> None:
    key_id, secret = new_key_pair()
    assert re.fullmatch(r"LTAI5t[A-Za-z0-9]{18}", key_id) and re.fullmatch(r"[A-Za-z0-9]{30}", secret)
    assert new_key_pair() != (key_id, secret)


def test_keys_create_appends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conf" / "keys.json"
    assert main(["keys", "create", "--file", str(path)]) == 0
    assert main(["keys", "create", "--file", str(path), "--action", "CompareFaces"]) == 0
    printed = re.findall(r"AccessKeyId: (\S+)\nAccessKeySecret: (\S+)", capsys.readouterr().out)
    keys = KeyStore(path).current()
    assert [k for k, _ in printed] == list(keys.keys)
    assert all(keys.keys[k].secret == s for k, s in printed)
    assert keys.keys[printed[1][0]].actions == {"CompareFaces"}
    if sys.platform != "win32":
        assert path.stat().st_mode & 0o777 == 0o600
    append_key(path, "LTAI5tX", "y")
    assert len(load_keys(path).keys) == 3


@pytest.mark.parametrize(
    "slip",
    [
        {"Enabled": "false"},
        {"Enabled": 0},
        {"Actions": "CompareFaces"},
        {"AccessKeySecret": ""},
        {"AccessKeySecret": None},
    ],
)
def test_an_edit_with_a_slip_revokes_the_garbled_key_and_keeps_the_others(tmp_path: Path, slip: dict) -> None:
    path = write(
        tmp_path / "k.json",
        {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-A"}, {"AccessKeyId": "B", "AccessKeySecret": "sB"}]},
    )
    auth = create_signature_authenticator(Settings(access_keys_file=path))
    try:
        assert asyncio.run(auth.authenticate(signed_rpc("A", "secret-A", nonce="1"))) == "A"
        revoking = {"AccessKeyId": "A", "AccessKeySecret": "secret-A", **slip}
        write(path, {"keys": [revoking, {"AccessKeyId": "B", "AccessKeySecret": "sB"}]})
        with pytest.raises(AccessKeyNotFound):
            asyncio.run(auth.authenticate(signed_rpc("A", "secret-A", nonce="2")))
        assert asyncio.run(auth.authenticate(signed_rpc("B", "sB", nonce="3"))) == "B"
        assert auth.problem() and "secret-A" not in (auth.problem() or "")
        write(path, {"keys": [{"AccessKeyId": "B", "AccessKeySecret": "sB"}]})  # fixed: clean again
        assert auth.problem() is None
    finally:
        asyncio.run(auth.close())


def test_deleted_keys_file_leaves_no_key_working(tmp_path: Path) -> None:
    path = write(tmp_path / "k.json", {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-A"}]})
    auth = create_signature_authenticator(Settings(access_keys_file=path))
    try:
        path.unlink()
        with pytest.raises(AccessKeyNotFound):
            asyncio.run(auth.authenticate(signed_rpc("A", "secret-A")))
        assert "missing" in (auth.problem() or "")
    finally:
        asyncio.run(auth.close())


def test_duplicated_key_id_in_an_edit_revokes_it(tmp_path: Path) -> None:
    path = write(tmp_path / "k.json", {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-A"}]})
    auth = create_signature_authenticator(Settings(access_keys_file=path))
    try:
        pair = [{"AccessKeyId": "A", "AccessKeySecret": "secret-A"}, {"AccessKeyId": "A", "AccessKeySecret": "x"}]
        write(path, {"keys": pair})
        with pytest.raises(AccessKeyNotFound):
            asyncio.run(auth.authenticate(signed_rpc("A", "secret-A")))
    finally:
        asyncio.run(auth.close())


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("mode", [0o644, 0o604, 0o620, 0o666, 0o602])
def test_keys_file_others_can_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "k.json", {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-A"}]})
    path.chmod(mode)
    with pytest.raises(KeysFileError, match="chmod 600"):
        load_keys(path)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_keys_file_made_readable_by_others_after_start_fails_closed(tmp_path: Path) -> None:
    path = write(tmp_path / "k.json", {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-A"}]})
    path.chmod(0o640)  # group-readable: accepted (Kubernetes Secrets with fsGroup)
    auth = create_signature_authenticator(Settings(access_keys_file=path))
    try:
        assert asyncio.run(auth.authenticate(signed_rpc("A", "secret-A", nonce="1"))) == "A"
        path.chmod(0o644)
        os.utime(path)  # a new stamp: picked up on the next request
        path.write_text(path.read_text())
        with pytest.raises(AccessKeyNotFound):
            asyncio.run(auth.authenticate(signed_rpc("A", "secret-A", nonce="2")))
        assert "chmod 600" in (auth.problem() or "")
    finally:
        asyncio.run(auth.close())


def test_readyz_reports_a_broken_keys_file_until_it_is_fixed(tmp_path: Path) -> None:
    import httpx

    from tests.helpers.server import run_server

    path = write(tmp_path / "k.json", {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-A"}]})
    with run_server(Settings(access_keys_file=path, object_store_root=tmp_path)) as url:
        assert httpx.get(f"{url}/readyz").status_code == 200
        write(path, {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-A", "Enabled": "false"}]})
        answer = httpx.get(f"{url}/readyz")
        assert answer.status_code == 503 and "Enabled must be a boolean" in answer.json()["keys"]
        assert "secret-A" not in answer.text
        write(path, {"keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-A", "Enabled": False}]})
        assert httpx.get(f"{url}/readyz").status_code == 200


def test_sts_refusals_use_the_gateway_security_token_codes(tmp_path: Path) -> None:
    """Expired, altered, another key's and missing tokens each get their own Alibaba code (all 400);
    an unknown key stays not found (404) whatever token comes with it."""
    live = {"AccessKeySecret": "secret-L", "Expiration": "2999-01-01T00:00:00Z"}
    path = write(
        tmp_path / "k.json",
        {
            "keys": [{"AccessKeyId": "A", "AccessKeySecret": "secret-A"}],
            "sts": [
                {
                    "AccessKeyId": "STS.T",
                    "AccessKeySecret": "secret-T",
                    "SecurityToken": "tok-T",
                    "Expiration": "2000-01-01T00:00:00Z",
                },
                {"AccessKeyId": "STS.L", "SecurityToken": "tok-L", **live},
                {"AccessKeyId": "STS.M", "SecurityToken": "tok-M", **live},
            ],
        },
    )
    auth = create_signature_authenticator(Settings(access_keys_file=path))
    cases = [
        (signed_rpc("STS.T", "secret-T", nonce="1", token="tok-T"), SecurityTokenExpired),
        (signed_rpc("STS.L", "secret-L", nonce="2", token="tok-Lx"), SecurityTokenMalformed),
        (signed_rpc("A", "secret-A", nonce="3", token="tok-x"), SecurityTokenMalformed),
        (signed_rpc("STS.L", "secret-L", nonce="4", token="tok-M"), SecurityTokenMismatch),
        (signed_rpc("STS.L", "secret-L", nonce="5"), MissingSecurityToken),
        (signed_rpc("STS.Z", "secret-L", nonce="6", token="tok-L"), AccessKeyNotFound),
    ]
    try:
        for request, error in cases:
            with pytest.raises(error) as caught:
                asyncio.run(auth.authenticate(request))
            assert caught.value.status == (404 if error is AccessKeyNotFound else 400)
        assert [e.code for _, e in cases[:-1]] == [
            "InvalidSecurityToken.Expired",
            "InvalidSecurityToken.Malformed",
            "InvalidSecurityToken.Malformed",
            "InvalidSecurityToken.MismatchWithAccessKey",
            "MissingSecurityToken",
        ]
    finally:
        asyncio.run(auth.close())
