"""``comparefaces keys``: every verb on a real keys file, and what a real server then answers a real SDK."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.auth.keys import load_keys, parse_iso8601
from app.cli import main
from app.settings import Settings
from tests.helpers.server import run_server

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
FIELD = re.compile(r"^(AccessKeyId|AccessKeySecret|SecurityToken|Expiration): (\S+)$", re.M)


def keys(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, str], str]:
    """Run ``comparefaces keys ARGV``: exit code, the printed ``Name: value`` fields, all output."""
    code = main(["keys", *argv])
    captured = capsys.readouterr()
    return code, dict(FIELD.findall(captured.out)), captured.out + captured.err


@pytest.fixture()
def path(tmp_path: Path) -> Path:
    return tmp_path / "conf" / "keys.json"


def call(endpoint: str, fields: dict[str, str]) -> str:
    """A signed CompareFaces by the Tea SDK that passes the signature checks and stops at the images:
    the code the server answers (``InvalidParam.ImageTypeEmpty`` means the credential was accepted)."""
    from alibabacloud_cloudauth20190307 import models
    from alibabacloud_cloudauth20190307.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    config = open_api_models.Config(
        access_key_id=fields["AccessKeyId"],
        access_key_secret=fields["AccessKeySecret"],
        security_token=fields.get("SecurityToken"),
        endpoint=endpoint,
        protocol="http",
    )
    try:
        Client(config).compare_faces(models.CompareFacesRequest(source_image_value="x", target_image_value="y"))
    except Exception as error:
        return str(getattr(error, "code", error))
    return "ok"


@pytest.fixture()
def server(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[str]:
    assert keys(capsys, "create", "--file", str(path))[0] == 0  # the server needs a file to start
    with run_server(Settings(access_keys_file=path, object_store_root=tmp_path / "oss")) as url:
        yield url.removeprefix("http://")


ACCEPTED = "InvalidParam.ImageTypeEmpty"


def test_every_verb_against_a_running_server(path: Path, server: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, key, _ = keys(capsys, "create", "--file", str(path), "--action", "CompareFaces")
    assert code == 0 and key["AccessKeyId"].startswith("LTAI5t") and len(key["AccessKeySecret"]) == 30
    assert call(server, key) == ACCEPTED

    code, sts, _ = keys(capsys, "create", "--sts", "--expires-in", "2h", "--file", str(path))
    assert code == 0 and sts["AccessKeyId"].startswith("STS.") and sts["SecurityToken"].startswith("CAIS")
    lifetime = parse_iso8601(sts["Expiration"]) - datetime.now(timezone.utc).timestamp()
    assert 7000 < lifetime <= 7200
    assert call(server, sts) == ACCEPTED
    assert call(server, {**sts, "SecurityToken": sts["SecurityToken"] + "x"}) == "InvalidSecurityToken.Malformed"

    code, _, out = keys(capsys, "list", "--file", str(path))
    assert code == 0 and key["AccessKeyId"] in out and sts["AccessKeyId"] in out
    assert key["AccessKeySecret"] not in out and sts["AccessKeySecret"] not in out and sts["SecurityToken"] not in out
    code, _, out = keys(capsys, "list", "--json", "--file", str(path))
    rows = {row["AccessKeyId"]: row for row in json.loads(out)}
    assert rows[key["AccessKeyId"]] == {
        "Type": "key",
        "AccessKeyId": key["AccessKeyId"],
        "Enabled": True,
        "Actions": ["CompareFaces"],
    }
    assert rows[sts["AccessKeyId"]]["Type"] == "sts" and rows[sts["AccessKeyId"]]["Expired"] is False

    assert keys(capsys, "disable", key["AccessKeyId"], "--file", str(path))[0] == 0
    assert call(server, key) == "InvalidAccessKeyId.Inactive"
    assert keys(capsys, "enable", key["AccessKeyId"], "--file", str(path))[0] == 0
    assert call(server, key) == ACCEPTED

    code, new, out = keys(capsys, "rotate", key["AccessKeyId"], "--file", str(path))
    assert code == 0 and new["AccessKeyId"] != key["AccessKeyId"]
    assert call(server, new) == ACCEPTED and call(server, key) == "InvalidAccessKeyId.Inactive"
    assert load_keys(path).keys[new["AccessKeyId"]].actions == {"CompareFaces"}
    code, newer, _ = keys(capsys, "rotate", new["AccessKeyId"], "--keep-old", "--file", str(path))
    assert code == 0 and call(server, new) == ACCEPTED and call(server, newer) == ACCEPTED

    assert keys(capsys, "disable", sts["AccessKeyId"], "--file", str(path))[0] == 0
    assert call(server, sts) == "InvalidAccessKeyId.Inactive"
    for gone in (key, sts):
        assert keys(capsys, "delete", gone["AccessKeyId"], "--file", str(path))[0] == 0
        assert call(server, gone) == "InvalidAccessKeyId.NotFound"

    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [".keys.json.lock", "keys.json"]  # no temp file left


def test_mistakes_are_refused_and_leave_the_file_alone(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert keys(capsys, "create", "--file", str(path))[0] == 0
    before = path.read_bytes()
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for argv, says in [
        (("disable", "LTAI5tNOSUCHKEY"), "no key LTAI5tNOSUCHKEY"),
        (("delete", "LTAI5tNOSUCHKEY"), "no key"),
        (("create", "--expires-in", "1h"), "add --sts"),
        (("create", "--sts", "--expires-in", "soon"), "not a duration"),
        (("create", "--sts", "--expires", past), "in the past"),
        (("create", "--sts", "--expires", "tomorrow"), "not an ISO 8601 time"),
    ]:
        code, _, out = keys(capsys, *argv, "--file", str(path))
        assert code == 2 and says in out, (argv, out)
    assert path.read_bytes() == before

    sts = keys(capsys, "create", "--sts", "--expires", "2099-01-01T00:00:00Z", "--file", str(path))[1]
    assert sts["Expiration"] == "2099-01-01T00:00:00Z"
    code, _, out = keys(capsys, "rotate", sts["AccessKeyId"], "--file", str(path))
    assert code == 2 and "STS credential" in out

    path.write_text('{"keys": [{"AccessKeyId": "A"}]}')  # a file the server would not read: never rewritten
    code, _, out = keys(capsys, "create", "--file", str(path))
    assert code == 2 and "AccessKeySecret" in out
    assert path.read_text() == '{"keys": [{"AccessKeyId": "A"}]}'


def test_without_a_file_it_says_how_to_name_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMPAREFACES_ACCESS_KEYS_FILE", raising=False)
    code, _, out = keys(capsys, "list")
    assert code == 2 and "--file" in out
