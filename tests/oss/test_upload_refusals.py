"""What the OSS SDKs' callers see when an upload is refused: the SDK's own exception carrying OSS's
code, HTTP status and XML fields, and nothing written to the store."""

from __future__ import annotations

import base64
import json
import time
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import oss2
import pytest

from app.oss.tokens import TokenIssuer
from tests.helpers.images import astronaut_face_crop, encode
from tests.oss.conftest import (
    BUCKET,
    TOKEN_SECRET,
    Server,
    describe_token,
    node_upload,
    oss2_bucket,
    oss_v2_client,
)

FACE = encode(astronaut_face_crop())
VERSIONS = pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])


def refused(bucket: Any, key: str, data: bytes = FACE) -> oss2.exceptions.OssError:
    with pytest.raises(oss2.exceptions.OssError) as error:
        bucket.put_object(key, data)
    assert len(error.value.request_id) == 24, error.value
    return error.value


def assert_refused(error: oss2.exceptions.OssError, status: int, code: str) -> None:
    assert (error.status, error.code) == (status, code), (error.status, error.code, error.message)
    assert error.details["HostId"] and error.details["Message"]


@VERSIONS
def test_expired_token(local_server: Server, v4: bool) -> None:
    token = describe_token(local_server.endpoint)
    scope, secret, security_token = TokenIssuer(TOKEN_SECRET.encode()).issue(BUCKET, token["Path"], time.time() - 1)
    expired = {**token, "Key": scope.key_id, "Secret": secret, "Token": security_token}
    key = f"{token['Path']}/late.jpg"
    assert_refused(refused(oss2_bucket(expired, v4=v4), key), 403, "SecurityTokenExpired")
    assert local_server.stored(key) is None


@VERSIONS
@pytest.mark.parametrize(
    "where",
    ["uploads/SomeoneElsesPath/face.jpg", "elsewhere/face.jpg", "{path}x/face.jpg", "{path}", "{other}/face.jpg"],
)
def test_another_path(local_server: Server, v4: bool, where: str) -> None:
    token, other = describe_token(local_server.endpoint), describe_token(local_server.endpoint)
    key = where.format(path=token["Path"], other=other["Path"])
    assert_refused(refused(oss2_bucket(token, v4=v4), key), 403, "AccessDenied")
    assert local_server.stored(key) is None


@VERSIONS
def test_another_bucket(local_server: Server, v4: bool) -> None:
    token = describe_token(local_server.endpoint)
    key = f"{token['Path']}/face.jpg"
    assert_refused(refused(oss2_bucket(token, v4=v4, bucket="other-bucket"), key), 403, "AccessDenied")
    assert not (local_server.settings.object_store_root / "other-bucket").exists()


@VERSIONS
def test_tampered_signature(local_server: Server, v4: bool) -> None:
    token = describe_token(local_server.endpoint)
    key = f"{token['Path']}/face.jpg"
    error = refused(oss2_bucket(token, v4=v4, secret=token["Secret"][::-1]), key)
    assert_refused(error, 403, "SignatureDoesNotMatch")
    assert error.details["OSSAccessKeyId"] == token["Key"] and error.details["StringToSign"]
    assert local_server.stored(key) is None


@VERSIONS
def test_tampered_token(local_server: Server, v4: bool) -> None:
    """A token rewritten to reach another path, and one token presented with another's key."""
    token, other = describe_token(local_server.endpoint), describe_token(local_server.endpoint)
    payload, _, mac = token["Token"].partition(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["p"] = "uploads"
    widened = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + mac
    for forged in ({**token, "Token": widened}, {**token, "Token": other["Token"]}):
        assert_refused(refused(oss2_bucket(forged, v4=v4), "uploads/anything.jpg"), 403, "InvalidSecurityToken")
    assert local_server.stored("uploads/anything.jpg") is None


@VERSIONS
def test_oversized_object(local_server: Server, v4: bool) -> None:
    token = describe_token(local_server.endpoint)
    key = f"{token['Path']}/huge.jpg"
    too_big = FACE + b"\0" * (local_server.settings.max_image_bytes + 1 - len(FACE))
    assert_refused(refused(oss2_bucket(token, v4=v4), key, too_big), 400, "EntityTooLarge")
    assert local_server.stored(key) is None
    just_fits = too_big[:-1]
    assert oss2_bucket(token, v4=v4).put_object(key, just_fits).status == 200  # the cap is the image cap


def test_unknown_key_and_anonymous_requests(local_server: Server) -> None:
    token = describe_token(local_server.endpoint)
    key = f"{token['Path']}/face.jpg"
    anonymous = oss2.Bucket(oss2.AnonymousAuth(), token["EndPoint"], BUCKET)
    assert_refused(refused(anonymous, key), 403, "AccessDenied")
    permanent = oss2.Bucket(oss2.Auth("LTAI5tNOTANSTSKEY00001", "x" * 30), token["EndPoint"], BUCKET)
    assert_refused(refused(permanent, key), 403, "InvalidAccessKeyId")
    assert local_server.stored(key) is None


def test_the_credentials_only_write(local_server: Server) -> None:
    token = describe_token(local_server.endpoint)
    key = f"{token['Path']}/face.jpg"
    bucket = oss2_bucket(token, v4=True)
    bucket.put_object(key, FACE)
    with pytest.raises(oss2.exceptions.OssError) as read:
        bucket.get_object(key)
    assert (read.value.status, read.value.code) == (403, "AccessDenied")
    with pytest.raises(oss2.exceptions.OssError) as deleted:
        bucket.delete_object(key)
    assert deleted.value.status == 403
    assert local_server.stored(key) == FACE


def test_error_body_is_oss_xml(local_server: Server) -> None:
    response = httpx.put(f"http://{local_server.endpoint}/{BUCKET}/uploads/x/face.jpg", content=FACE)
    assert response.status_code == 403 and response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    fields = {child.tag: child.text for child in root}
    assert root.tag == "Error" and fields["Code"] == "AccessDenied"
    assert fields["RequestId"] == response.headers["x-oss-request-id"]
    assert fields["HostId"] == f"{BUCKET}.{local_server.endpoint}"


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_oss_v2_sdk_sees_the_refusals(local_server: Server, v4: bool) -> None:
    import alibabacloud_oss_v2 as oss

    token = describe_token(local_server.endpoint)
    for bucket, key, code in (
        ("other-bucket", f"{token['Path']}/face.jpg", "AccessDenied"),
        (BUCKET, "uploads/not-mine/face.jpg", "AccessDenied"),
    ):
        with pytest.raises(oss.exceptions.OperationError) as error:
            oss_v2_client(token, v4=v4).put_object(oss.PutObjectRequest(bucket=bucket, key=key, body=FACE))
        service_error = error.value.unwrap()
        assert isinstance(service_error, oss.exceptions.ServiceError), service_error
        assert (service_error.status_code, service_error.code) == (403, code)


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_ali_oss_node_sees_the_refusals(local_server: Server, v4: bool, tmp_path: Any) -> None:
    photo, huge = tmp_path / "face.jpg", tmp_path / "huge.jpg"
    photo.write_bytes(FACE)
    huge.write_bytes(FACE + b"\0" * local_server.settings.max_image_bytes)
    token = describe_token(local_server.endpoint)
    cases = [
        ({"bucket": "other-bucket", "key": "face.jpg", "file": str(photo)}, 403, "AccessDenied"),
        ({"key": "/uploads/not-mine/face.jpg", "file": str(photo)}, 403, "AccessDenied"),
        ({"key": "face.jpg", "file": str(photo), "secret": token["Secret"][::-1]}, 403, "SignatureDoesNotMatch"),
        ({"key": "huge.jpg", "file": str(huge)}, 400, "EntityTooLarge"),
    ]
    for call, status, code in cases:
        outcome = node_upload({"token": token, "v4": v4, **call})
        assert not outcome["ok"] and (outcome["status"], outcome["code"]) == (status, code), outcome
        assert len(outcome["requestId"]) == 24


def test_uploads_past_the_open_request_limit_wait_outside(upload_keys_file: Any, tmp_path: Any) -> None:
    """With MAX_OPEN_REQUESTS uploads being received, the next one is refused (503, body unread)."""
    import socket

    from oss2.http import Request

    from tests.helpers.server import run_server
    from tests.oss.conftest import upload_settings

    settings = upload_settings(upload_keys_file, object_store_root=tmp_path, max_open_requests=1)
    with run_server(settings) as url:
        endpoint = url.removeprefix("http://")
        token = describe_token(endpoint)
        slow_key = f"{token['Path']}/slow.jpg"
        auth = oss2.StsAuth(token["Key"], token["Secret"], token["Token"], auth_version=oss2.AUTH_VERSION_4)
        signed = Request("PUT", f"{url}/{BUCKET}/{slow_key}", data=FACE, region="cn-hangzhou", product="oss")
        auth._sign_request(signed, BUCKET, slow_key)
        head = f"PUT /{BUCKET}/{slow_key} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Length: {len(FACE)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in signed.headers.items() if value is not None)
        host, port = endpoint.split(":")
        with socket.create_connection((host, int(port)), timeout=30) as slow:
            slow.sendall((head + "\r\n").encode() + FACE[:100])  # authenticated, body still arriving
            time.sleep(0.5)
            busy = refused(oss2_bucket(token, v4=True), f"{token['Path']}/next.jpg")
            slow.sendall(FACE[100:])
            answer = slow.recv(4096).decode(errors="replace")
    assert_refused(busy, 503, "ServiceUnavailable")
    assert answer.startswith("HTTP/1.1 200"), answer
    assert (tmp_path / BUCKET / slow_key).read_bytes() == FACE
