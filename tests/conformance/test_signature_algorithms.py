"""The V3 algorithms the Tea SDKs can send, and a disabled key, with the project's own SDKs in process
(the pinned matrix in ``test_sdk_matrix.py`` covers the other versions when they are installed).

- ``ACS3-HMAC-SM3``: SM3 over the canonical request and the body, HMAC-SM3 signature: accepted.
- ``ACS3-RSA-SHA256``: signed with an RSA private key whose public half no keys file holds: refused
  as ``IncompleteSignature`` (the gateway verifies it against a registered public key).
- A disabled key: ``InvalidAccessKeyId.Inactive`` (400), the gateway's own code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from tests.conformance.conftest import AK
from tests.conformance.relay import relay
from tests.helpers.images import astronaut_face_crop, b64, encode
from tests.helpers.server import run_server

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
FACE = b64(encode(astronaut_face_crop()))
DISABLED = ("LTAI5tFAKEDISABLED0001", "DisabledSecret0123456789abcdef")


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("algorithms")
    keys = {
        "keys": [
            {"AccessKeyId": AK.key_id, "AccessKeySecret": AK.secret},
            {"AccessKeyId": DISABLED[0], "AccessKeySecret": DISABLED[1], "Enabled": False},
        ]
    }
    (folder / "keys.json").write_text(json.dumps(keys))
    (folder / "keys.json").chmod(0o600)
    settings = Settings(access_keys_file=folder / "keys.json", object_store_root=folder / "oss")
    with run_server(settings) as url, relay(url.removeprefix("http://")) as path:
        yield path.endpoint


def tea_call(endpoint: str, key_id: str, secret: str, algorithm: str | None, **fields: str) -> Any:
    """The Tea client's CompareFaces: its response, or the exception it raised."""
    from alibabacloud_cloudauth20190307 import models
    from alibabacloud_cloudauth20190307.client import Client
    from alibabacloud_tea_openapi import models as open_api_models

    config = open_api_models.Config(access_key_id=key_id, access_key_secret=secret, endpoint=endpoint, protocol="http")
    if algorithm:
        config.signature_algorithm = algorithm
    request = models.CompareFacesRequest(
        source_image_type="FacePic", source_image_value=FACE, target_image_type="FacePic", target_image_value=FACE
    )
    for name, value in fields.items():
        setattr(request, name, value)
    try:
        return Client(config).compare_faces(request)
    except Exception as error:  # noqa: BLE001 (the SDK's own, checked by the caller)
        return error


def test_sm3_signatures_are_accepted(endpoint: str) -> None:
    response = tea_call(endpoint, AK.key_id, AK.secret, "ACS3-HMAC-SM3")
    assert not isinstance(response, Exception), response
    assert response.body.code == "1" and response.body.data.similarity_score > 90
    wrong = tea_call(endpoint, AK.key_id, AK.secret[::-1], "ACS3-HMAC-SM3")
    assert (wrong.code, wrong.status_code) == ("SignatureDoesNotMatch", 400)
    assert "server string to sign is:ACS3-HMAC-SM3\n" in wrong.message


def test_rsa_signatures_are_refused(endpoint: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    refused = tea_call(endpoint, AK.key_id, pem, "ACS3-RSA-SHA256")
    assert (refused.code, refused.status_code) == ("IncompleteSignature", 400), refused


@pytest.mark.parametrize("algorithm", [None, "ACS3-HMAC-SM3", "v2"])
def test_a_disabled_key_gets_the_gateway_code(endpoint: str, algorithm: str | None) -> None:
    refused = tea_call(endpoint, *DISABLED, algorithm)
    assert (refused.code, refused.status_code) == ("InvalidAccessKeyId.Inactive", 400), refused
    assert "Specified access key is disabled." in refused.message
    wrong_secret = tea_call(endpoint, DISABLED[0], DISABLED[1][::-1], algorithm)
    assert wrong_secret.code == "SignatureDoesNotMatch"  # nothing told to whoever lacks the secret


def test_a_disabled_key_with_the_core_sdk(endpoint: str) -> None:
    from aliyunsdkcloudauth.request.v20190307.CompareFacesRequest import CompareFacesRequest
    from aliyunsdkcore.acs_exception.exceptions import ServerException
    from aliyunsdkcore.client import AcsClient

    host, _, port = endpoint.partition(":")
    request = CompareFacesRequest()
    request.set_endpoint(host)
    request.set_protocol_type("http")
    request.set_SourceImageType("FacePic")
    request.set_SourceImageValue(FACE)
    request.set_TargetImageType("FacePic")
    request.set_TargetImageValue(FACE)
    with pytest.raises(ServerException) as refused:
        AcsClient(*DISABLED, "cn-hangzhou", port=int(port)).do_action_with_exception(request)
    assert (refused.value.get_error_code(), refused.value.get_http_status()) == ("InvalidAccessKeyId.Inactive", 400)
