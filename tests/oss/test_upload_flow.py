"""The whole flow with the official SDKs against the real server: ``DescribeOssUploadToken`` (Tea
SDK), PutObject with the returned STS credentials (oss2, alibabacloud-oss-v2, ali-oss; signatures
V1 and V4), then ``CompareFaces`` on the ``oss://Bucket:Path/<file>`` address, on a local directory
and on a real S3-compatible store."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.helpers.images import astronaut_bgr, astronaut_face_crop, b64, encode
from tests.oss.conftest import (
    BUCKET,
    COMPARE_ONLY,
    UPLOADER,
    Server,
    compare_faces,
    describe_token,
    node_tea_available,
    node_upload,
    oss2_bucket,
    oss_v2_client,
)

FACE = encode(astronaut_face_crop())
PHOTO = b64(encode(astronaut_bgr()))


def etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


def assert_compares(server: Server, token: dict[str, Any], key: str) -> None:
    """The uploaded object is in the store and CompareFaces reads it through its oss:// address."""
    assert server.stored(key) == FACE
    body = compare_faces(server.endpoint, f"oss://{token['Bucket']}:{key}", PHOTO)
    assert body.code == "1" and body.data.similarity_score > 90, body


def test_token_has_the_fields_and_formats_of_the_real_service(local_server: Server) -> None:
    before_ms = time.time() * 1000
    token = describe_token(local_server.endpoint)
    other = describe_token(local_server.endpoint, algorithm="v2")  # RPC v1 signature
    ttl_ms = local_server.settings.oss_token_ttl_s * 1000
    assert token["Bucket"] == BUCKET
    assert token["EndPoint"] == f"http://{local_server.endpoint}"
    assert isinstance(token["Expired"], int) and before_ms - 1000 <= token["Expired"] - ttl_ms <= time.time() * 1000
    assert token["Key"].startswith("STS.") and token["Secret"] and token["Token"]
    assert token["Path"].startswith("uploads/") and not token["Path"].endswith("/")
    assert token["Path"] != other["Path"] and token["Key"] != other["Key"]  # a fresh scope per call


def test_token_in_xml_through_the_core_sdk(local_server: Server) -> None:
    from aliyunsdkcloudauth.request.v20190307.DescribeOssUploadTokenRequest import DescribeOssUploadTokenRequest
    from aliyunsdkcore.client import AcsClient

    host, port = local_server.endpoint.split(":")
    client = AcsClient(UPLOADER.key_id, UPLOADER.secret, "cn-hangzhou", port=int(port))
    request = DescribeOssUploadTokenRequest()
    request.set_endpoint(host)
    request.set_protocol_type("http")
    request.set_accept_format("XML")
    status, _, body, _ = client._implementation_of_do_action(request)
    text = body.decode()
    assert status == 200, text
    assert "<DescribeOssUploadTokenResponse>" in text and f"<Bucket>{BUCKET}</Bucket>" in text
    for field in ("RequestId", "EndPoint", "Expired", "Key", "Path", "Secret", "Token"):
        assert f"<{field}>" in text


def test_a_key_without_the_action_may_not_get_a_token(local_server: Server) -> None:
    from alibabacloud_tea_openapi.exceptions import AlibabaCloudException

    with pytest.raises(AlibabaCloudException) as refused:
        describe_token(local_server.endpoint, COMPARE_ONLY)
    assert (refused.value.status_code, refused.value.code) == (403, "Error.NoPermissionAccess")


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_oss2_upload_then_compare(server: Server, v4: bool) -> None:
    token = describe_token(server.endpoint)
    key = f"{token['Path']}/selfie {'v4' if v4 else 'v1'}+é.jpg"  # spaces, + and UTF-8 are signed as OSS signs them
    result = oss2_bucket(token, v4=v4).put_object(key, FACE)
    assert result.status == 200 and result.etag == etag(FACE) and len(result.request_id) == 24
    assert_compares(server, token, key)


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_oss_v2_sdk_upload_then_compare(server: Server, v4: bool) -> None:
    import alibabacloud_oss_v2 as oss

    token = describe_token(server.endpoint)
    key = f"{token['Path']}/id photo.jpg"
    client = oss_v2_client(token, v4=v4)
    result = client.put_object(oss.PutObjectRequest(bucket=token["Bucket"], key=key, body=FACE))
    assert result.status_code == 200 and result.etag == f'"{etag(FACE)}"'
    assert_compares(server, token, key)


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_ali_oss_node_upload_then_compare(server: Server, v4: bool, tmp_path: Any) -> None:
    """ali-oss sends an IP endpoint's requests with ``Host: <bucket>.oss-<region>...`` and the key as
    the path: the virtual-hosted form. The token comes from the Node Tea SDK when it is installed."""
    photo = tmp_path / "face.jpg"
    photo.write_bytes(FACE)
    call: dict[str, Any] = {"v4": v4, "key": "node.jpg", "file": str(photo)}
    if node_tea_available():
        call["cloudauth"] = {"endpoint": server.endpoint, "keyId": UPLOADER.key_id, "secret": UPLOADER.secret}
    else:
        call["token"] = describe_token(server.endpoint)
    outcome = node_upload(call)
    assert outcome["ok"] and outcome["status"] == 200, outcome
    assert outcome["etag"] == f'"{etag(FACE)}"'
    token = outcome["token"]
    assert token["Bucket"] == BUCKET and token["Path"].startswith("uploads/")
    assert_compares(server, token, f"{token['Path']}/node.jpg")


def test_virtual_hosted_request_with_a_host_name(local_server: Server) -> None:
    """What an SDK sends to a host-name endpoint (``Host: <bucket>.<endpoint>``, key as the path),
    signed by oss2 and sent to 127.0.0.1 with that Host (no name is resolved)."""
    import oss2
    from oss2.http import Request

    token = describe_token(local_server.endpoint)
    key = f"{token['Path']}/virtual.jpg"
    host = f"{BUCKET}.faces.test:{local_server.endpoint.split(':')[1]}"
    auth = oss2.StsAuth(token["Key"], token["Secret"], token["Token"], auth_version=oss2.AUTH_VERSION_4)
    request = Request("PUT", f"http://{host}/{key}", data=FACE, region="cn-hangzhou", product="oss")
    auth._sign_request(request, BUCKET, key)
    headers = {**{k: v for k, v in request.headers.items() if v is not None}, "host": host}
    response = httpx.put(f"http://{local_server.endpoint}/{key}", content=FACE, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert local_server.stored(key) == FACE
    assert base64.b64decode(response.headers["content-md5"]) == hashlib.md5(FACE).digest()


def test_uploads_can_be_switched_off(upload_keys_file: Any, tmp_path: Any) -> None:
    from alibabacloud_tea_openapi.exceptions import AlibabaCloudException

    from tests.helpers.server import run_server
    from tests.oss.conftest import upload_settings

    settings: Settings = upload_settings(upload_keys_file, object_store_root=tmp_path, oss_uploads=False)
    with run_server(settings) as url:
        endpoint = url.removeprefix("http://")
        with pytest.raises(AlibabaCloudException) as refused:
            describe_token(endpoint)
        put = httpx.put(f"{url}/{BUCKET}/uploads/x/y.jpg", content=FACE)
    assert (refused.value.status_code, refused.value.code) == (404, "InvalidAction.NotFound")
    assert "x-oss-request-id" not in put.headers and put.json()["Code"]  # the Cloudauth gateway's refusal, not OSS


def test_a_token_from_one_replica_uploads_through_another(local_server: Server) -> None:
    """Tokens are checked statelessly: a second process with the same OSS_TOKEN_SECRET (and store)
    accepts an upload with credentials the first one issued, and the first one compares it."""
    from tests.helpers.server import run_server

    with run_server(local_server.settings) as other_url:
        token = {**describe_token(local_server.endpoint), "EndPoint": other_url}
        key = f"{token['Path']}/replica.jpg"
        assert oss2_bucket(token, v4=True).put_object(key, FACE).status == 200
    assert_compares(local_server, token, key)
