"""The demo page's server side: served from the package, on only where it should be, and its
analysis endpoint checked exactly as the API is (no way around signatures)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import urlencode

import httpx
import pytest

from app.auth.access import OpenAccess
from app.auth.canonical import rpc_signature, rpc_string_to_sign
from app.demo.routes import demo_enabled
from app.settings import Settings
from tests.conftest import API, compare
from tests.demo.conftest import KeyedServer, keyed_settings, no_face, two_faces
from tests.helpers.images import b64
from tests.helpers.server import run_server
from tests.hostile.hostile_images import face_jpeg

FACE = b64(face_jpeg())
NOT_FOUND = "InvalidAction.NotFound"


def pair(source: str = FACE, target: str = FACE, types: tuple[str, str] = ("FacePic", "FacePic")) -> dict[str, str]:
    return {**API, "SourceImageType": types[0], "SourceImageValue": source, "TargetImageType": types[1],
            "TargetImageValue": target}  # fmt: skip


def signed(params: dict[str, str], key_id: str, secret: str) -> str:
    """An RPC v1 signed form body, as the page (and the core SDK) builds it."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    full = {**params, "AccessKeyId": key_id, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
            "SignatureNonce": uuid.uuid4().hex, "Timestamp": now}  # fmt: skip
    full["Signature"] = rpc_signature(secret, rpc_string_to_sign("POST", list(full.items())))
    return urlencode(full)


FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_root_stays_the_gateways_not_found(client: httpx.Client) -> None:
    assert client.get("/").json()["Code"] == NOT_FOUND
    assert client.get("/demo/").json()["Code"] == NOT_FOUND


def test_page_and_assets_come_from_the_package(client: httpx.Client) -> None:
    page = client.get("/demo")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp  # nothing off this server
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN: every asset is relative
    for name, kind in (("demo.js", "text/javascript"), ("demo.css", "text/css")):
        asset = client.get(f"/demo/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
    assert client.get("/demo/static/other.js").json()["Code"] == NOT_FOUND
    config = client.get("/demo/config").json()
    assert config["signatures"] is False and config["fars"] == ["0.0001", "0.001", "0.01"]


def test_analysis_shows_every_face_and_agrees_with_the_api(client: httpx.Client) -> None:
    photo = b64(two_faces())
    params = pair(photo, FACE)
    response = client.post("/demo/analysis", data=params)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    source = body["source"]
    assert len(source["faces"]) == 2
    areas = [(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]) for f in source["faces"]]
    assert source["compared"] == areas.index(max(areas))
    assert all(len(face["landmarks"]) == 5 for face in source["faces"])
    assert source["crop"].startswith("data:image/png;base64,")
    assert (source["width"], source["height"]) == (375, 250)
    api = compare(client, params).json()
    assert body["comparison"]["data"] == api["Data"]  # the same score and thresholds as the API
    assert set(body["comparison"]["thresholds"]) == {"0.01", "0.001", "0.0001"}
    assert body["comparison"]["thresholds_why"]  # whose impostors the thresholds were measured on, in words
    assert photo.removeprefix("base64://")[:200] not in response.text  # the photos are not sent back


def test_analysis_reports_the_image_without_a_face(client: httpx.Client) -> None:
    params = pair(FACE, b64(no_face()))
    body = client.post("/demo/analysis", data=params).json()
    assert body["comparison"] is None
    assert body["target"]["faces"] == [] and body["target"]["error"]["Code"] == "Error.NoFaceDetected"
    assert body["source"]["error"] is None and body["source"]["crop"]
    assert compare(client, params).json()["Code"] == "Error.NoFaceDetected"


def test_analysis_errors_are_the_apis(client: httpx.Client) -> None:
    refused = client.post("/demo/analysis", data=pair(types=("IDPic", "IDPic")))
    assert refused.status_code == 400 and refused.json()["Code"] == "InvalidParam.FacePicNotGiven"
    garbage = client.post("/demo/analysis", data=pair(source="base64://" + base64.b64encode(b"text").decode()))
    body = garbage.json()
    assert garbage.status_code == 200 and body["source"]["error"]["Code"] == "InvalidParam.ImageValuePatternError"
    for version, code in (("2017-01-01", "InvalidVersion"), ("", "MissingParameter")):
        wrong = client.post("/demo/analysis", data={**pair(), "Version": version})
        assert (wrong.status_code, wrong.json()["Code"]) == (400, code)  # as the API answers it
        assert compare(client, {**pair(), "Version": version}).json()["Code"] == code


@pytest.mark.parametrize(
    ("mode", "open_mode", "enabled"),
    [("auto", True, True), ("auto", False, False), ("on", False, True), ("on", True, True), ("off", True, False)],
)
def test_when_the_demo_is_on(mode: str, open_mode: bool, enabled: bool) -> None:
    authenticator = OpenAccess() if open_mode else SimpleNamespace(open_mode=False)
    services = SimpleNamespace(settings=Settings(demo=mode), authenticator=authenticator)
    assert demo_enabled(services) is enabled  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def keyed_auto(server_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_server(keyed_settings(server_settings, tmp_path_factory.mktemp("keys-auto"), "auto")) as url:
        yield url


def test_off_with_access_keys_unless_enabled(keyed_auto: str) -> None:
    """Its paths answer as any unknown path of a server that checks signatures does."""
    for method, path in (("GET", "/demo"), ("GET", "/demo/config"), ("POST", "/demo/analysis")):
        data = pair() if method == "POST" else None
        response = httpx.request(method, keyed_auto + path, data=data, timeout=30)
        elsewhere = httpx.request(method, keyed_auto + "/elsewhere", data=data, timeout=30)
        assert response.status_code == elsewhere.status_code == 400
        assert response.json()["Code"] == elsewhere.json()["Code"] == "MissingParameter"


def test_never_bypasses_signatures(keyed_demo: KeyedServer) -> None:
    url = keyed_demo.url
    assert httpx.get(url + "/demo").status_code == 200
    assert httpx.get(url + "/demo/config").json()["signatures"] is True
    unsigned = httpx.post(url + "/demo/analysis", data=pair(), timeout=30)
    assert unsigned.status_code == 400 and unsigned.json()["Code"] == "MissingParameter"
    wrong = httpx.post(url + "/demo/analysis", content=signed(pair(), keyed_demo.key_id, "wrong"), headers=FORM)
    assert wrong.json()["Code"] == "SignatureDoesNotMatch"
    body = signed(pair(), keyed_demo.key_id, keyed_demo.secret)
    accepted = httpx.post(url + "/demo/analysis", content=body, headers=FORM, timeout=30)
    assert accepted.status_code == 200 and accepted.json()["comparison"]["score"] > 90
    replayed = httpx.post(url + "/demo/analysis", content=body, headers=FORM, timeout=30)
    assert replayed.json()["Code"] == "SignatureNonceUsed"
    api = httpx.post(url + "/", content=signed(pair(), keyed_demo.key_id, keyed_demo.secret), headers=FORM)
    assert json.loads(api.text)["Data"]["SimilarityScore"] == accepted.json()["comparison"]["score"]
