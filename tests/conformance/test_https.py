"""The HTTPS column: every official client over TLS, trusting the CA of ``comparefaces tls init`` the
way docs/sdks-and-keys.md ("HTTPS") says, each call through the relay that delivers 1,400-byte
pieces (the TLS records arrive split across reads, as they do over a real network path)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from app.tools.tls import TlsFiles, init
from tests.conformance.clients import Credentials, Driver, NodeClient, NodeProcess, PythonCore, PythonTea
from tests.conformance.clients import node_unavailable as node_sdks_unavailable
from tests.conformance.conftest import AK, DRIVERS, STS
from tests.conformance.relay import relay
from tests.conformance.test_sdk_conformance import THRESHOLD_KEYS, params, photo_pair
from tests.helpers.server import run_server

UPLOADER = Credentials("LTAI5tHTTPSUPLOADER0001", "HttpsUploaderSecret0123456789ab")
OSS_NODE_DIR = Path(__file__).resolve().parents[1] / "oss" / "node"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    files, new_ca = init(tmp_path_factory.mktemp("tls"), ["127.0.0.1", "localhost"])
    assert new_ca
    return files


@pytest.fixture(scope="module")
def https_settings(
    conformance_settings: Settings, tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    keys = json.loads(Path(str(conformance_settings.access_keys_file)).read_text())
    keys["keys"].append(
        {
            "AccessKeyId": UPLOADER.key_id,
            "AccessKeySecret": UPLOADER.secret,
            "Actions": ["CompareFaces", "DescribeOssUploadToken"],
        }
    )
    keys_file = tmp_path_factory.mktemp("https-keys") / "access-keys.json"
    keys_file.write_text(json.dumps(keys))
    keys_file.chmod(0o600)
    return conformance_settings.model_copy(
        update={"access_keys_file": keys_file, "tls_cert_file": tls_files.cert, "tls_key_file": tls_files.key}
    )


@pytest.fixture(scope="module")
def https_endpoint(https_settings: Settings) -> Iterator[str]:
    """``127.0.0.1:PORT`` of the relay in front of the HTTPS server."""
    with run_server(https_settings) as url, relay(url.removeprefix("https://")) as path:
        yield path.endpoint


@pytest.fixture(scope="module")
def node_tls(tls_files: TlsFiles) -> Iterator[NodeProcess | None]:
    """The Node driver, started trusting the CA as the docs say (``NODE_EXTRA_CA_CERTS``)."""
    if node_sdks_unavailable():
        yield None
        return
    process = NodeProcess(env={"NODE_EXTRA_CA_CERTS": str(tls_files.ca_cert)})
    try:
        yield process
    finally:
        process.close()


def https_driver(name: str, endpoint: str, ca: Path, node: NodeProcess | None) -> Driver:
    sts = name.endswith("-sts")
    algorithm = "v2" if "-v2" in name else None
    if name.startswith("py-tea-"):
        return PythonTea(endpoint, algorithm=algorithm, sts=sts, ca_file=ca)
    if name.startswith("py-core-"):
        return PythonCore(endpoint, xml="-xml" in name, sts=sts, ca_file=ca)
    reason = node_sdks_unavailable()
    if reason or node is None:
        pytest.skip(reason or "node unavailable")
    client = "popcore" if name.startswith("node-popcore") else "tea"
    return NodeClient(node, endpoint, client=client, algorithm=algorithm, sts=sts, protocol="https")


@pytest.mark.parametrize("name", DRIVERS)
def test_every_client_compares_over_https_through_the_relay(
    name: str, https_endpoint: str, tls_files: TlsFiles, node_tls: NodeProcess | None
) -> None:
    driver = https_driver(name, https_endpoint, tls_files.ca_cert, node_tls)
    source, target, at_least = photo_pair()
    outcome = driver.call(STS if driver.sts else AK, params(source=source, target=target))
    assert outcome.ok, f"{name} over https: {outcome}"
    assert outcome.status == 200 and outcome.code == "1"
    assert outcome.score is not None and at_least <= outcome.score <= 100
    assert set(outcome.thresholds) == THRESHOLD_KEYS


def test_a_client_that_does_not_trust_the_ca_is_refused(https_settings: Settings) -> None:
    """The SDK's default trust store does not hold the development CA: verification is real. (A server
    of its own: Tea pools connections per host and port, and one verified earlier would be reused.)"""
    from alibabacloud_cloudauth20190307 import models
    from alibabacloud_cloudauth20190307.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    with run_server(https_settings) as url:
        config = open_api_models.Config(
            access_key_id=AK.key_id,
            access_key_secret=AK.secret,
            endpoint=url.removeprefix("https://"),
            protocol="https",
        )
        with pytest.raises(Exception, match="(?i)certificate verify failed"):
            Client(config).compare_faces(models.CompareFacesRequest(source_image_type="FacePic"))


def test_a_plain_http_client_on_the_tls_port_gets_no_answer(https_endpoint: str) -> None:
    """No HTTP is served on the TLS port (the SDK's ``protocol='http'`` fails instead of sending in clear)."""
    with pytest.raises(Exception, match="(?i)connection|remote end closed|reset|aborted"):
        PythonTea(https_endpoint).call(AK, params())


# OSS uploads over HTTPS: the token's EndPoint says https://, and oss2 and ali-oss upload through it.


def https_token(endpoint: str, ca: Path) -> dict[str, Any]:
    from alibabacloud_cloudauth20190307.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    config = open_api_models.Config(
        access_key_id=UPLOADER.key_id,
        access_key_secret=UPLOADER.secret,
        endpoint=endpoint,
        protocol="https",
        ca=str(ca),
    )
    token = Client(config).describe_oss_upload_token().body.oss_upload_token
    return {
        "Bucket": token.bucket,
        "EndPoint": token.end_point,
        "Path": token.path,
        "Key": token.key,
        "Secret": token.secret,
        "Token": token.token,
    }


def test_the_upload_token_endpoint_says_https(https_endpoint: str, tls_files: TlsFiles) -> None:
    assert https_token(https_endpoint, tls_files.ca_cert)["EndPoint"] == f"https://{https_endpoint}"


def test_oss2_uploads_over_https(
    https_endpoint: str, tls_files: TlsFiles, https_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import oss2

    from tests.helpers.images import astronaut_face_crop, encode

    token = https_token(https_endpoint, tls_files.ca_cert)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.ca_cert))  # what oss2 (requests) trusts
    auth = oss2.StsAuth(token["Key"], token["Secret"], token["Token"], auth_version=oss2.AUTH_VERSION_4)
    bucket = oss2.Bucket(auth, token["EndPoint"], token["Bucket"], region="cn-hangzhou", connect_timeout=10)
    photo = encode(astronaut_face_crop())
    assert bucket.put_object(f"{token['Path']}/oss2.jpg", photo).status == 200
    stored = https_settings.object_store_root / token["Bucket"] / token["Path"] / "oss2.jpg"
    assert stored.read_bytes() == photo


def test_ali_oss_uploads_over_https(https_endpoint: str, tls_files: TlsFiles, https_settings: Settings) -> None:
    if not (OSS_NODE_DIR / "node_modules" / "ali-oss" / "package.json").is_file() or node_sdks_unavailable():
        pytest.skip("ali-oss or the Node Tea SDK is not installed: run scripts/install-node-sdks.sh")
    from tests.helpers.images import astronaut_face_crop, encode

    photo_file = https_settings.object_store_root.parent / "ali-oss-https.jpg"
    photo_file.write_bytes(encode(astronaut_face_crop()))
    # ali-oss sends `Host: <bucket>.oss-<region>.aliyuncs.com` to an IP endpoint, and Node checks the
    # certificate against that name: over HTTPS it needs a host name the certificate has, path-style.
    token = https_token(https_endpoint, tls_files.ca_cert)
    port = https_endpoint.rpartition(":")[2]
    assert token["EndPoint"] == f"https://127.0.0.1:{port}"
    token["EndPoint"] = f"https://localhost:{port}"  # what OSS_ENDPOINT would say
    call = {
        "token": token,
        "pathStyle": True,
        "resolve": {"localhost": "127.0.0.1"},
        "v4": True,
        "key": "node.jpg",
        "file": str(photo_file),
    }
    done = subprocess.run(
        ["node", str(OSS_NODE_DIR / "upload.js")],
        input=json.dumps(call),
        capture_output=True,
        text=True,
        timeout=90,
        cwd=OSS_NODE_DIR,
        env={**os.environ, "NODE_NO_WARNINGS": "1", "NODE_EXTRA_CA_CERTS": str(tls_files.ca_cert)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["ok"], outcome
    stored = https_settings.object_store_root / outcome["token"]["Bucket"] / outcome["token"]["Path"] / "node.jpg"
    assert stored.read_bytes() == photo_file.read_bytes()
