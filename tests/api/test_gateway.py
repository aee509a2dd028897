"""The gateway's protocol, in-process (``tests/helpers/gateway.py``): no socket, no model file.
Success and error bodies, where parameters may come from, signed requests and replays, each in
milliseconds. The same rules on the real server with real faces: test_compare_api, test_errors_api,
tests/conformance (the official SDKs)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
import pytest

from app.auth.canonical import pct, rpc_signature, rpc_string_to_sign
from app.settings import Settings
from tests.conftest import API, compare
from tests.helpers.gateway import StandInComparisons, gateway
from tests.helpers.images import astronaut_face_crop, b64, encode

FACE = b64(encode(astronaut_face_crop()))
PAIR = {"SourceImageType": "FacePic", "SourceImageValue": FACE, "TargetImageType": "IDPic", "TargetImageValue": FACE}
KEY_ID, SECRET = "LTAI5tGATEWAYTEST00001", "GatewaySecret0123456789abcdefAB"


def test_success_body_and_thresholds(gateway_client: httpx.Client) -> None:
    response = compare(gateway_client, PAIR)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"RequestId", "Code", "Data", "Success"}
    assert body["Code"] == "1" and body["Success"] is True
    assert response.headers["x-acs-request-id"] == body["RequestId"]
    thresholds = json.loads(body["Data"]["ConfidenceThresholds"])
    assert list(thresholds) == ["0.0001", "0.001", "0.01"]
    assert 0 <= body["Data"]["SimilarityScore"] <= 100


def test_success_in_xml_when_the_query_asks(gateway_client: httpx.Client) -> None:
    response = gateway_client.post("/", params={**API, "Format": "XML"}, data=PAIR)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/xml;charset=utf-8"
    root = ET.fromstring(response.text)
    assert [child.tag for child in root] == ["RequestId", "Code", "Data", "Success"]
    assert root.findtext("Data/SimilarityScore")


def test_parameters_merge_query_and_body_and_the_body_wins(gateway_client: httpx.Client) -> None:
    query = {**API, "SourceImageType": "FacePic", "SourceImageValue": FACE, "TargetImageType": "Selfie"}
    body = {"TargetImageType": "FacePic", "TargetImageValue": FACE}
    response = gateway_client.post("/", params=query, data=body)
    assert response.status_code == 200, response.text
    everything_in_the_query = gateway_client.post("/", params={**API, **PAIR})
    assert everything_in_the_query.status_code == 200, everything_in_the_query.text


def test_unsigned_action_may_come_from_the_header(gateway_client: httpx.Client) -> None:
    headers = {"x-acs-action": "CompareFaces", "x-acs-version": "2019-03-07"}
    assert gateway_client.post("/", data=PAIR, headers=headers).status_code == 200


def test_an_error_before_the_body_is_read_honours_the_query_format(gateway_client: httpx.Client) -> None:
    response = gateway_client.post("/elsewhere", params={"Format": "XML"}, data=PAIR)
    assert response.status_code == 404
    assert ET.fromstring(response.text).findtext("Code") == "InvalidAction.NotFound"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, StandInComparisons]]:
    folder = tmp_path_factory.mktemp("gateway-keys")
    keys = folder / "keys.json"
    keys.write_text(json.dumps({"keys": [{"AccessKeyId": KEY_ID, "AccessKeySecret": SECRET}]}))
    keys.chmod(0o600)
    comparisons = StandInComparisons()
    with gateway(Settings(access_keys_file=keys, object_store_root=folder), comparisons) as client:
        yield client, comparisons


def signed_form(nonce: str, secret: str = SECRET, **changes: str) -> dict[str, str]:
    """A CompareFaces request signed the RPC v1 way (HMAC-SHA1), every parameter in the form body."""
    params = {
        **API,
        **PAIR,
        "AccessKeyId": KEY_ID,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    params["Signature"] = rpc_signature(secret, rpc_string_to_sign("POST", list(params.items())))
    return {**params, **changes}


def post_form(client: httpx.Client, form: dict[str, str]) -> httpx.Response:
    body = "&".join(f"{pct(key)}={pct(value)}" for key, value in form.items())
    return client.post("/", content=body, headers={"content-type": "application/x-www-form-urlencoded"})


def test_signed_request_is_served_once(signed: tuple[httpx.Client, StandInComparisons]) -> None:
    client, comparisons = signed
    before = comparisons.compared
    form = signed_form("gateway-once")
    assert post_form(client, form).status_code == 200
    replay = post_form(client, form)
    assert replay.status_code == 400 and replay.json()["Code"] == "SignatureNonceUsed"
    assert comparisons.compared == before + 1


@pytest.mark.parametrize(
    ("form", "code"),
    [
        (signed_form("gateway-tampered", TargetImageType="FacePic"), "SignatureDoesNotMatch"),
        (signed_form("gateway-other-secret", secret="x" * 30), "SignatureDoesNotMatch"),
        (signed_form("gateway-unknown-key", AccessKeyId="LTAI5tNOSUCHKEY0000001"), "InvalidAccessKeyId.NotFound"),
        ({**API, **PAIR}, "MissingParameter"),
    ],
)
def test_refused_requests_never_reach_the_comparison(
    signed: tuple[httpx.Client, StandInComparisons], form: dict[str, str], code: str
) -> None:
    client, comparisons = signed
    before = comparisons.compared
    response = post_form(client, form)
    assert response.json()["Code"] == code, response.text
    assert comparisons.compared == before


def test_readyz_names_the_service_and_says_signatures_are_required(
    signed: tuple[httpx.Client, StandInComparisons],
) -> None:
    client, _ = signed
    assert client.get("/readyz").json() == {"status": "ready", "model": "stand-in", "signatures": "required"}
