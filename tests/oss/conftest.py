"""The upload flow against the real server: keys file, servers on a local directory and on a real
S3-compatible store (SeaweedFS), and the official clients (Cloudauth Tea SDK for the token, the
OSS SDKs for the upload)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from tests.helpers.seaweed import SeaweedS3, run_seaweedfs, s3_client
from tests.helpers.server import run_server

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")  # SDK credential chains stay off the network

NODE_DIR = Path(__file__).resolve().parent / "node"
CONFORMANCE_NODE = Path(__file__).resolve().parents[1] / "conformance" / "node" / "node_modules"
BUCKET = "faces-uploads"
TOKEN_SECRET = "upload-token-secret-for-tests-0123456789"
REGION = "cn-hangzhou"


@dataclass(frozen=True)
class Key:
    key_id: str
    secret: str


UPLOADER = Key("LTAI5tUPLOADER00000001", "UploaderSecret0123456789abcdef")  # both actions
COMPARE_ONLY = Key("LTAI5tCOMPAREONLY00001", "CompareOnlySecret0123456789abc")


@dataclass(frozen=True)
class Server:
    endpoint: str  # 127.0.0.1:PORT
    settings: Settings
    s3: SeaweedS3 | None = None

    def stored(self, key: str) -> bytes | None:
        """The object as the object store holds it (None when absent)."""
        if self.s3 is None:
            path = self.settings.object_store_root / BUCKET / key
            return path.read_bytes() if path.is_file() else None
        client = s3_client(self.s3)
        try:
            return bytes(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None
        finally:
            client.close()


@pytest.fixture(scope="session")
def upload_keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    document = {
        "keys": [
            {
                "AccessKeyId": UPLOADER.key_id,
                "AccessKeySecret": UPLOADER.secret,
                "Actions": ["CompareFaces", "DescribeOssUploadToken"],
            },
            {"AccessKeyId": COMPARE_ONLY.key_id, "AccessKeySecret": COMPARE_ONLY.secret, "Actions": ["CompareFaces"]},
        ]
    }
    path = tmp_path_factory.mktemp("keys") / "access-keys.json"
    path.write_text(json.dumps(document))
    path.chmod(0o600)  # the server refuses a keys file others can read
    path.chmod(0o600)
    return path


def upload_settings(keys_file: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "access_keys_file": keys_file,
        "oss_upload_bucket": BUCKET,
        "oss_token_secret": TOKEN_SECRET,
        "max_in_flight": 64,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="session")
def local_server(upload_keys_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Signatures required, uploads in a local directory."""
    settings = upload_settings(upload_keys_file, object_store_root=tmp_path_factory.mktemp("store"))
    with run_server(settings) as url:
        yield Server(url.removeprefix("http://"), settings)


@pytest.fixture(scope="session")
def s3_server(upload_keys_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Signatures required, uploads in a live SeaweedFS S3 gateway (skips when ``weed`` is absent)."""
    with run_seaweedfs(tmp_path_factory.mktemp("s3")) as s3:
        client = s3_client(s3)
        client.create_bucket(Bucket=BUCKET)
        client.close()
        settings = upload_settings(
            upload_keys_file,
            object_store="s3",
            s3_endpoint_url=s3.endpoint_url,
            s3_access_key_id=s3.access_key,
            s3_secret_access_key=s3.secret_key,
            object_store_root=Path("/nonexistent"),
        )
        with run_server(settings) as url:
            yield Server(url.removeprefix("http://"), settings, s3)


@pytest.fixture(params=["local", "s3"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(f"{request.param}_server")


def tea_client(endpoint: str, key: Key = UPLOADER, algorithm: str | None = None) -> Any:
    from alibabacloud_cloudauth20190307.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    config = open_api_models.Config(
        access_key_id=key.key_id, access_key_secret=key.secret, endpoint=endpoint, protocol="http"
    )
    if algorithm:
        config.signature_algorithm = algorithm
    return Client(config)


def describe_token(endpoint: str, key: Key = UPLOADER, algorithm: str | None = None) -> dict[str, Any]:
    """``DescribeOssUploadToken`` through the official Tea SDK; the token as the SDK model parsed it."""
    from alibabacloud_cloudauth20190307 import models

    response = tea_client(endpoint, key, algorithm).describe_oss_upload_token()
    assert isinstance(response, models.DescribeOssUploadTokenResponse)
    body = response.body
    assert isinstance(body, models.DescribeOssUploadTokenResponseBody)
    token = body.oss_upload_token
    assert isinstance(token, models.DescribeOssUploadTokenResponseBodyOssUploadToken)
    assert body.request_id
    return {
        "Bucket": token.bucket,
        "EndPoint": token.end_point,
        "Path": token.path,
        "Expired": token.expired,
        "Key": token.key,
        "Secret": token.secret,
        "Token": token.token,
    }


def compare_faces(endpoint: str, source: str, target: str, key: Key = UPLOADER) -> Any:
    """``CompareFaces`` through the Tea SDK; the response body (raises the SDK's exception on errors)."""
    from alibabacloud_cloudauth20190307 import models

    request = models.CompareFacesRequest(
        source_image_type="FacePic", source_image_value=source, target_image_type="FacePic", target_image_value=target
    )
    return tea_client(endpoint, key).compare_faces(request).body


def oss2_bucket(token: dict[str, Any], *, v4: bool, bucket: str | None = None, secret: str | None = None) -> Any:
    """``oss2.Bucket`` with the token's STS credentials, as oss2's STS example builds it."""
    import oss2

    version = oss2.AUTH_VERSION_4 if v4 else oss2.AUTH_VERSION_1
    auth = oss2.StsAuth(token["Key"], secret or token["Secret"], token["Token"], auth_version=version)
    return oss2.Bucket(auth, token["EndPoint"], bucket or token["Bucket"], region=REGION, connect_timeout=10)


def oss_v2_client(token: dict[str, Any], *, v4: bool) -> Any:
    """``alibabacloud_oss_v2.Client`` with the token's STS credentials."""
    import alibabacloud_oss_v2 as oss

    provider = oss.credentials.StaticCredentialsProvider(token["Key"], token["Secret"], token["Token"])
    config = oss.config.load_default()
    config.credentials_provider = provider
    config.region = REGION
    config.endpoint = token["EndPoint"]
    config.retry_max_attempts = 1
    if not v4:
        config.signature_version = "v1"
    return oss.Client(config)


def node_unavailable() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "ali-oss" / "package.json").is_file():
        return "ali-oss not installed: run scripts/install-node-sdks.sh"
    return None


def node_tea_available() -> bool:
    return (CONFORMANCE_NODE / "@alicloud" / "cloudauth20190307" / "package.json").is_file()


def node_upload(call: dict[str, Any]) -> dict[str, Any]:
    """One run of tests/oss/node/upload.js (ali-oss, and the Node Tea SDK when ``cloudauth`` is given)."""
    reason = node_unavailable()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        ["node", str(NODE_DIR / "upload.js")],
        input=json.dumps(call),
        capture_output=True,
        text=True,
        timeout=90,
        cwd=NODE_DIR,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome.get("code") != "ClientError", outcome
    return outcome
