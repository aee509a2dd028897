"""Upload budgets per token, per access key and store-wide, as the OSS SDKs' callers see them:
OSS error bodies (``QuotaExceeded`` 403, ``ServiceUnavailable`` 503) and nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.oss.quotas import BLOCK_BYTES, QuotaExceeded, StoreFull, UploadQuotas, on_disk
from app.oss.tokens import UploadScope
from app.settings import Settings
from tests.helpers.images import astronaut_face_crop, encode
from tests.helpers.server import run_server
from tests.oss.conftest import UPLOADER, Key, Server, describe_token, oss2_bucket, upload_settings
from tests.oss.test_upload_refusals import assert_refused, refused

FACE = encode(astronaut_face_crop())
SECOND = Key("LTAI5tUPLOADER00000002", "UploaderSecret0123456789abcdeX")


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    actions = ["CompareFaces", "DescribeOssUploadToken"]
    document = {
        "keys": [{"AccessKeyId": k.key_id, "AccessKeySecret": k.secret, "Actions": actions} for k in (UPLOADER, SECOND)]
    }
    path = tmp_path_factory.mktemp("keys") / "access-keys.json"
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def tight(keys_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Room for 3 objects per token, 5 per key, 8 in the store (each face is a few 4 KiB blocks)."""
    blocks = on_disk(len(FACE))
    settings = upload_settings(
        keys_file,
        object_store_root=tmp_path_factory.mktemp("store"),
        oss_token_max_objects=3,
        oss_key_max_objects=5,
        oss_store_max_bytes=8 * blocks,
        oss_store_min_free_bytes=0,
    )
    with run_server(settings) as url:
        yield Server(url.removeprefix("http://"), settings)


def put(token: dict[str, Any], name: str) -> Any:
    return oss2_bucket(token, v4=True).put_object(f"{token['Path']}/{name}", FACE)


def test_token_key_and_store_budgets(tight: Server) -> None:
    first = describe_token(tight.endpoint)
    for n in range(3):
        assert put(first, f"{n}.jpg").status == 200
    error = refused(oss2_bucket(first, v4=True), f"{first['Path']}/3.jpg")
    assert_refused(error, 403, "QuotaExceeded")
    assert "3 objects" in error.details["Message"]
    assert tight.stored(f"{first['Path']}/3.jpg") is None

    second = describe_token(tight.endpoint)  # a new token of the same key: the key's budget is 5
    assert [put(second, f"{n}.jpg").status for n in range(2)] == [200, 200]
    error = refused(oss2_bucket(second, v4=True), f"{second['Path']}/2.jpg")
    assert_refused(error, 403, "QuotaExceeded")
    assert "access key" in error.details["Message"]

    other = describe_token(tight.endpoint, SECOND)  # another key has its own budget, the store is shared
    assert [put(other, f"{n}.jpg").status for n in range(3)] == [200, 200, 200]
    another = describe_token(tight.endpoint, SECOND)
    error = refused(oss2_bucket(another, v4=True), f"{another['Path']}/x.jpg")
    assert_refused(error, 503, "ServiceUnavailable")
    assert tight.stored(f"{another['Path']}/x.jpg") is None


def test_a_free_space_floor_refuses_every_upload(keys_file: Path, tmp_path: Path) -> None:
    settings = upload_settings(keys_file, object_store_root=tmp_path, oss_store_min_free_bytes=2**62)
    with run_server(settings) as url:
        token = describe_token(url.removeprefix("http://"))
        error = refused(oss2_bucket(token, v4=False), f"{token['Path']}/face.jpg")
    assert_refused(error, 503, "ServiceUnavailable")
    assert not list(tmp_path.rglob("*.jpg"))


def test_a_restarted_server_counts_what_the_store_already_holds(keys_file: Path, tmp_path: Path) -> None:
    settings = upload_settings(keys_file, object_store_root=tmp_path, oss_store_max_bytes=2 * on_disk(len(FACE)))
    for expected in (200, 200):
        with run_server(settings) as url:
            assert put(describe_token(url.removeprefix("http://")), "face.jpg").status == expected
    with run_server(settings) as url:
        token = describe_token(url.removeprefix("http://"))
        assert_refused(refused(oss2_bucket(token, v4=True), f"{token['Path']}/face.jpg"), 503, "ServiceUnavailable")


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_budgets_come_back_once_retention_has_deleted_the_uploads() -> None:
    settings = Settings(oss_token_max_objects=2, oss_key_max_bytes=10 * BLOCK_BYTES, oss_upload_retention_s=100)
    clock = Clock()
    quotas = UploadQuotas(settings, sweep_interval_s=25, clock=clock)
    scope = UploadScope("STS.a", "b", "uploads/x", clock.now + 900, owner="LTAI5tKEY")
    quotas.reserve(scope, 1, None)
    quotas.reserve(scope, 5 * BLOCK_BYTES, None)  # 1 block + 5 blocks
    with pytest.raises(QuotaExceeded):
        quotas.reserve(scope, 1, None)
    with pytest.raises(QuotaExceeded):  # the key's bytes: 6 of 10 blocks held
        quotas.reserve(UploadScope("STS.b", "b", "uploads/y", 0, owner="LTAI5tKEY"), 5 * BLOCK_BYTES, None)
    clock.now += 124
    with pytest.raises(QuotaExceeded):  # still counted until the sweep has surely run
        quotas.reserve(scope, 1, None)
    clock.now += 1
    quotas.reserve(scope, 1, None)
    assert quotas.total.objects == 1 and quotas.total.bytes == BLOCK_BYTES
    with pytest.raises(StoreFull):
        quotas.reserve(scope, 1, free_bytes=settings.oss_store_min_free_bytes)
