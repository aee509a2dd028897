"""Object names an uploader may send: each one is stored or refused with ``InvalidObjectName`` (400),
never an internal error; control characters of every kind and line separators are refused."""

from __future__ import annotations

import pytest

from tests.oss.conftest import BUCKET, Server, describe_token, oss2_bucket
from tests.oss.test_upload_refusals import FACE, assert_refused, refused

REFUSED = {
    "long-segment": "x" * 300 + ".jpg",
    "long-folder": "y" * 256 + "/face.jpg",
    "c1-control": "face\x85.jpg",
    "c1-csi": "face\x9b31m.jpg",
    "line-separator": "face\u2028.jpg",
    "paragraph-separator": "face\u2029.jpg",
    "delete": "face\x7f.jpg",
}


@pytest.mark.parametrize("name", REFUSED.values(), ids=REFUSED.keys())
def test_unstorable_or_control_names_are_invalid_object_names(local_server: Server, name: str) -> None:
    token = describe_token(local_server.endpoint)
    key = f"{token['Path']}/{name}"
    assert_refused(refused(oss2_bucket(token, v4=True), key), 400, "InvalidObjectName")
    folder = local_server.settings.object_store_root / BUCKET / token["Path"]
    assert not folder.exists() or not [path for path in folder.rglob("*") if path.is_file()]


def test_a_name_under_an_existing_object_or_onto_a_folder(local_server: Server) -> None:
    token = describe_token(local_server.endpoint)
    bucket = oss2_bucket(token, v4=False)
    assert bucket.put_object(f"{token['Path']}/face.jpg", FACE).status == 200
    assert bucket.put_object(f"{token['Path']}/folder/face.jpg", FACE).status == 200
    for key in (f"{token['Path']}/face.jpg/under.jpg", f"{token['Path']}/folder"):
        assert_refused(refused(bucket, key), 400, "InvalidObjectName")
    assert local_server.stored(f"{token['Path']}/face.jpg") == FACE


def test_unicode_names_are_stored(local_server: Server) -> None:
    token = describe_token(local_server.endpoint)
    key = f"{token['Path']}/照片 é.jpg"
    assert oss2_bucket(token, v4=True).put_object(key, FACE).status == 200
    assert local_server.stored(key) == FACE
