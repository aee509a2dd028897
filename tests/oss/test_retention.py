"""Uploads are biometric data: they are deleted once older than COMPAREFACES_OSS_UPLOAD_RETENTION_S,
from a local directory and from a real S3-compatible store, and by the running server on its own."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from app.images.object_store import LocalObjectStore, S3ObjectStore
from app.oss.service import UPLOAD_PREFIX
from tests.helpers.images import astronaut_face_crop, encode
from tests.helpers.server import run_server
from tests.oss.conftest import BUCKET, Server, compare_faces, describe_token, oss2_bucket, upload_settings

FACE = encode(astronaut_face_crop())


def test_local_sweep_deletes_only_old_uploads(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    asyncio.run(store.put(BUCKET, f"{UPLOAD_PREFIX}/old/face.jpg", FACE))
    asyncio.run(store.put(BUCKET, f"{UPLOAD_PREFIX}/new/face.jpg", FACE))
    asyncio.run(store.put(BUCKET, "kept/face.jpg", FACE))  # outside the upload prefix: never swept
    hour_ago = time.time() - 3600
    for path in (tmp_path / BUCKET / UPLOAD_PREFIX / "old" / "face.jpg", tmp_path / BUCKET / "kept" / "face.jpg"):
        os.utime(path, (hour_ago, hour_ago))
    assert asyncio.run(store.delete_older_than(BUCKET, UPLOAD_PREFIX, 60)) == 1
    assert not (tmp_path / BUCKET / UPLOAD_PREFIX / "old").exists()  # its folder went too
    assert (tmp_path / BUCKET / UPLOAD_PREFIX / "new" / "face.jpg").read_bytes() == FACE
    assert (tmp_path / BUCKET / "kept" / "face.jpg").is_file()
    assert (tmp_path / BUCKET / UPLOAD_PREFIX / "new" / "face.jpg").stat().st_mode & 0o077 == 0  # owner only


def test_s3_sweep_deletes_only_old_uploads(s3_server: Server) -> None:
    assert s3_server.s3 is not None
    store = S3ObjectStore(s3_server.settings)
    old, new = f"{UPLOAD_PREFIX}/sweep-old/face.jpg", f"{UPLOAD_PREFIX}/sweep-new/face.jpg"
    asyncio.run(store.put(BUCKET, old, FACE))
    time.sleep(2.1)  # S3 LastModified has one-second resolution
    asyncio.run(store.put(BUCKET, new, FACE))
    assert asyncio.run(store.delete_older_than(BUCKET, UPLOAD_PREFIX, 1.0)) >= 1
    assert s3_server.stored(old) is None and s3_server.stored(new) == FACE
    asyncio.run(store.close())


def test_the_server_deletes_uploads_after_the_retention(upload_keys_file: Path, tmp_path: Path) -> None:
    from alibabacloud_tea_openapi.exceptions import AlibabaCloudException

    settings = upload_settings(upload_keys_file, object_store_root=tmp_path, oss_upload_retention_s=2)
    with run_server(settings) as url:
        endpoint = url.removeprefix("http://")
        token = describe_token(endpoint)
        key = f"{token['Path']}/face.jpg"
        oss2_bucket(token, v4=True).put_object(key, FACE)
        address = f"oss://{BUCKET}:{key}"
        assert compare_faces(endpoint, address, address).data.similarity_score > 90
        path = tmp_path / BUCKET / key
        deadline = time.monotonic() + 15
        while path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not path.exists(), "the upload outlived its retention"
        with pytest.raises(AlibabaCloudException) as gone:
            compare_faces(endpoint, address, address)
    assert (gone.value.status_code, gone.value.code) == (400, "InvalidParam.ImageNotFound")
