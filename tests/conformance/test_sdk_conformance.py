"""What a caller of each official client sees from the real server (signatures required).

Each client variant (see ``DRIVERS``): a comparison of two real photos parsed by the SDK's own
response model; a wrong secret, an unknown key, a replayed nonce and a stale timestamp each as the
SDK's own exception with the gateway's code; every CompareFaces error of the spec's table with its
code, message and HTTP status.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import numpy as np
import pytest

from tests.conformance.clients import Credentials, Driver, Outcome
from tests.conformance.conftest import AK, AK_DENIED, DRIVERS, STS, STS_DENIED, ImageHost, iso
from tests.helpers.images import LFW, astronaut_bgr, astronaut_face_crop, b64, encode, lfw_photo

FACE = b64(encode(astronaut_face_crop()))
BLANK = b64(encode(np.full((200, 200, 3), 180, np.uint8)))
THRESHOLD_KEYS = {"0.0001", "0.001", "0.01"}


def photo_pair() -> tuple[str, str, float]:
    """Two photos of one person and the score they must at least reach."""
    if LFW.is_dir():
        return b64(lfw_photo("Tony_Blair", 1)), b64(lfw_photo("Tony_Blair", 2)), 80.0
    return b64(encode(astronaut_bgr())), FACE, 90.0  # without ../shared: scikit-image's astronaut


def params(
    source_type: str | None = "FacePic",
    source: str | None = FACE,
    target_type: str | None = "FacePic",
    target: str | None = FACE,
) -> dict[str, str]:
    named = {
        "SourceImageType": source_type,
        "SourceImageValue": source,
        "TargetImageType": target_type,
        "TargetImageValue": target,
    }
    return {name: value for name, value in named.items() if value is not None}


def assert_own_error(driver: Driver, outcome: Outcome, code: str, status: int) -> None:
    assert not outcome.ok, f"{driver.name}: expected {code}, got {outcome}"
    assert (outcome.code, outcome.status) == (code, status), f"{driver.name}: {outcome}"
    assert driver.own_error_type(outcome), f"{driver.name}: not the SDK's own error type: {outcome}"
    assert outcome.request_id, outcome


def test_comparison_is_parsed_by_the_sdk_model(driver: Driver, creds: Credentials) -> None:
    source, target, at_least = photo_pair()
    outcome = driver.call(creds, params(source=source, target=target))
    assert outcome.ok, f"{driver.name}: {outcome}"
    assert outcome.status == 200 and outcome.code == "1"
    assert isinstance(outcome.score, (int, float)) and not isinstance(outcome.score, bool)
    assert at_least <= outcome.score <= 100
    assert set(outcome.thresholds) == THRESHOLD_KEYS
    assert all(len(value.split(".")[1]) == 2 for value in outcome.thresholds.values())
    assert len(outcome.request_id) == 36


def test_wrong_secret_is_a_signature_mismatch(driver: Driver, creds: Credentials) -> None:
    outcome = driver.call(creds.with_secret(creds.secret[::-1]), params())
    if driver.name.startswith("py-core-json"):
        # The core SDK compares the server's string to sign (after the message's colon) with its own:
        # equal strings mean the secret is wrong, and it says so under its own code.
        assert_own_error(driver, outcome, "InvalidAccessKeySecret", 400)
        return
    assert_own_error(driver, outcome, "SignatureDoesNotMatch", 400)
    assert "server string to sign is:" in outcome.message


def test_unknown_key_is_not_found(driver: Driver, creds: Credentials) -> None:
    unknown = Credentials(creds.key_id[:-4] + "ZZZZ", creds.secret, creds.token)
    assert_own_error(driver, driver.call(unknown, params()), "InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize("name", [name for name in DRIVERS if name.endswith("-sts")])
def test_altered_sts_token_malformed(name: str, make_driver: Callable[[str, str], Driver], signed_server: str) -> None:
    driver = make_driver(name, signed_server)
    wrong = Credentials(STS.key_id, STS.secret, STS.token.replace("fake", "Fake"))
    assert_own_error(driver, driver.call(wrong, params()), "InvalidSecurityToken.Malformed", 400)


def test_replayed_nonce_is_refused(driver: Driver, creds: Credentials) -> None:
    nonce = uuid.uuid4().hex
    first = driver.call(creds, params(), nonce=nonce)
    assert first.ok, f"{driver.name}: {first}"
    assert_own_error(driver, driver.call(creds, params(), nonce=nonce), "SignatureNonceUsed", 400)


@pytest.mark.parametrize("skew_min", [-20, 20])
def test_stale_timestamp_is_expired(driver: Driver, creds: Credentials, skew_min: int) -> None:
    timestamp = iso(datetime.now(timezone.utc) + timedelta(minutes=skew_min))
    assert_own_error(driver, driver.call(creds, params(), timestamp=timestamp), "InvalidTimeStamp.Expired", 400)


@dataclass(frozen=True)
class Row:
    code: str
    message: str
    status: int
    params: dict[str, str]
    denied_key: bool = False  # call with a key that may not call CompareFaces
    failing_engine: bool = False  # call the server whose comparison step fails


ERROR_TABLE = {
    "InternalError": Row(
        "Error.InternalError",
        "The request processing has failed due to some unknown error.",
        500,
        params(),
        failing_engine=True,
    ),
    "ParamMissing": Row(
        "InvalidParam.ParamMissing", "Please check if there is param empty in your imput.", 403, params(target=None)
    ),
    "NoPermissionAccess": Row(
        "Error.NoPermissionAccess", "No permission to access our service.", 403, params(), denied_key=True
    ),
    "CompareFacesError": Row(
        "Error.CompareFacesError",
        "CompareFaces action failed due to internal error.",
        500,
        params(target_type="IDPic"),
        failing_engine=True,
    ),
    "ImageTypeEmpty": Row("InvalidParam.ImageTypeEmpty", "The image type is empty.", 400, params(source_type=None)),
    "FacePicNotGiven": Row(
        "InvalidParam.FacePicNotGiven",
        "At least one of the two given images has a type of FacePic.",
        400,
        params(source_type="IDPic", target_type="IDPic"),
    ),
    "ImageValuePatternError": Row(
        "InvalidParam.ImageValuePatternError",
        "The pattern of value of given image is not acceptable.",
        400,
        params(target="/etc/passwd"),
    ),
    "ImageTypeInvalid": Row(
        "InvalidParam.ImageTypeInvalid", "The image type is not valid.", 400, params(target_type="Selfie")
    ),
    "NoFaceDetected": Row("Error.NoFaceDetected", "No face detected from given images.", 400, params(target=BLANK)),
    "ImageNotFound": Row(
        "InvalidParam.ImageNotFound",
        "No images founded with given image address",
        400,
        params(target="oss://my-bucket:missing/face.jpg"),
    ),
}


@pytest.mark.parametrize("row_name", list(ERROR_TABLE))
def test_compare_faces_error_table(
    row_name: str,
    driver: Driver,
    creds: Credentials,
    make_driver: Callable[[str, str], Driver],
    request: pytest.FixtureRequest,
) -> None:
    row = ERROR_TABLE[row_name]
    if row.failing_engine:
        driver = make_driver(driver.name, request.getfixturevalue("failing_server"))
    if row.denied_key:
        creds = STS_DENIED if driver.sts else AK_DENIED
    outcome = driver.call(creds, row.params)
    assert_own_error(driver, outcome, row.code, row.status)
    assert row.message in outcome.message, outcome


def test_every_client_variant_is_listed() -> None:
    assert len(set(DRIVERS)) == len(DRIVERS) == 12


@pytest.mark.parametrize("name", ["py-tea-v3", "py-core-json", "node-tea-v3", "node-popcore"])
def test_nonce_replayed_on_another_server_is_refused(
    name: str, make_driver: Callable[[str, str], Driver], redis_servers: tuple[str, str]
) -> None:
    """Two server processes sharing ``COMPAREFACES_REDIS_URL``: a nonce used on one is refused on the other."""
    first, second = (make_driver(name, endpoint) for endpoint in redis_servers)
    nonce = uuid.uuid4().hex
    cheap = params(source_type=None)  # passes the signature checks, then fails before any image is read
    assert_own_error(first, first.call(AK, cheap, nonce=nonce), "InvalidParam.ImageTypeEmpty", 400)
    assert_own_error(second, second.call(AK, cheap, nonce=nonce), "SignatureNonceUsed", 400)
    assert_own_error(first, first.call(AK, cheap, nonce=nonce), "SignatureNonceUsed", 400)
    assert_own_error(second, second.call(AK, cheap), "InvalidParam.ImageTypeEmpty", 400)


REFUSED = {
    "wrong secret": (lambda c: c.with_secret(c.secret[::-1]), {}),
    "unknown key": (lambda c: Credentials(c.key_id[:-4] + "ZZZZ", c.secret, c.token), {}),
    "stale timestamp": (lambda c: c, {"timestamp": "2020-01-01T00:00:00Z"}),
}


@pytest.mark.parametrize("name", ["py-tea-v3", "py-tea-v2-sts", "py-core-json", "node-tea-v3", "node-popcore"])
def test_signatures_are_checked_before_any_image_is_fetched(
    name: str, make_driver: Callable[[str, str], Driver], signed_server: str, image_host: ImageHost
) -> None:
    driver = make_driver(name, signed_server)
    creds = STS if driver.sts else AK
    for label, (change, pins) in REFUSED.items():
        path = f"/{name}/{label.replace(' ', '-')}.jpg"
        outcome = driver.call(change(creds), params(target=image_host.base_url + path), **pins)
        assert not outcome.ok, (label, outcome)
        assert image_host.hits.get(path, 0) == 0, f"{label}: image fetched before the signature was checked"
    path = f"/{name}/signed.jpg"
    outcome = driver.call(creds, params(target=image_host.base_url + path))
    assert outcome.ok, outcome
    assert image_host.hits[path] == 1


def test_with_a_keys_file_every_request_must_be_signed(signed_server: str) -> None:
    base = f"http://{signed_server}"
    assert httpx.get(f"{base}/readyz").json()["signatures"] == "required"
    unsigned = httpx.post(base + "/", data={"Action": "CompareFaces", "Version": "2019-03-07", **params()}, timeout=30)
    assert unsigned.status_code == 400
    assert unsigned.json()["Code"] == "MissingParameter"
