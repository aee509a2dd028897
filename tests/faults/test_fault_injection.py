"""Fault injection on a real server: chosen errors (Throttling.User with its retry header, a
gateway signature error), delays, fixed scores; matching by key, image value and share; reloads;
refusal unless enabled; visible on /readyz and in the log."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.faults import FaultsConfigError, check_fault_settings, error_catalog, parse_rules
from app.settings import Settings
from tests.conftest import compare
from tests.helpers.images import b64
from tests.helpers.server import REPO, free_port, run_server
from tests.hostile.hostile_images import face_jpeg

RULES = {
    "rules": [
        {"name": "key QA sees no face", "match": {"access_key_id": "LTAI5tQANOFACE"}, "error": "Error.NoFaceDetected"},
        {
            "name": "throttled",
            "match": {"image_value": "^oss://qa-tests:throttle/"},
            "error": "Throttling.User",
            "retry_after_ms": 2500,
        },
        {
            "name": "bad signature",
            "match": {"image_value": "^oss://qa-tests:signature/"},
            "error": "SignatureDoesNotMatch",
        },
        {
            "name": "slow fixed score",
            "match": {"image_value": "^oss://qa-tests:fixed/"},
            "delay_ms": 300,
            "score": 42.5,
        },
        {
            "name": "half of key HALF",
            "match": {"access_key_id": ["LTAI5tHALF"], "share": 0.5},
            "error": "ServiceUnavailable",
        },
        {"name": "slow only", "match": {"image_value": "^oss://qa-tests:slow/"}, "delay_ms": 200},
    ]
}
FACE = b64(face_jpeg())


def params(source: str = FACE, target: str = FACE, **extra: str) -> dict[str, str]:
    return {"SourceImageType": "FacePic", "SourceImageValue": source, "TargetImageType": "FacePic",
            "TargetImageValue": target, **extra}  # fmt: skip


def write_rules(path: Path, document: object) -> None:
    """Atomically, as an editor saving the file would (a new inode: the change is always seen)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document) if not isinstance(document, str) else document)
    tmp.chmod(0o600)  # refused when others could rewrite it, as the keys file
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def faults_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "faults.json"
    write_rules(path, RULES)
    return path


@pytest.fixture(scope="module")
def faulty(server_settings: Settings, faults_file: Path) -> Iterator[httpx.Client]:
    settings = server_settings.model_copy(update={"faults_file": faults_file, "faults_enabled": True})
    with run_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_an_error_for_every_call_from_one_key(faulty: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="comparefaces.faults"):
        refused = compare(faulty, params(AccessKeyId="LTAI5tQANOFACE"))
    assert refused.status_code == 400
    assert refused.json()["Code"] == "Error.NoFaceDetected"
    assert refused.json()["Message"] == "No face detected from given images."
    assert "fault injected: rule='key QA sees no face'" in caplog.text
    served = compare(faulty, params(AccessKeyId="LTAI5tSOMEONEELSE"))
    assert served.status_code == 200 and served.json()["Data"]["SimilarityScore"] > 90


def test_throttling_with_its_retry_header(faulty: httpx.Client) -> None:
    response = compare(faulty, params(source="oss://qa-tests:throttle/a.jpg"))
    assert response.status_code == 429
    assert response.json()["Code"] == "Throttling.User"
    assert response.headers["x-acs-retry-after"] == "2500"


def test_a_gateway_signature_error(faulty: httpx.Client) -> None:
    response = compare(faulty, params(target="oss://qa-tests:signature/b.jpg"))
    assert response.status_code == 400
    body = response.json()
    assert body["Code"] == "SignatureDoesNotMatch"
    assert body["Message"].startswith("Specified signature is not matched with our calculation.")


def test_a_fixed_score_after_a_delay_without_loading_the_images(faulty: httpx.Client) -> None:
    started = time.perf_counter()
    response = compare(faulty, params(source="oss://qa-tests:fixed/nothing-here.jpg", TargetImageType="IDPic"))
    assert time.perf_counter() - started >= 0.3
    assert response.status_code == 200
    data = response.json()["Data"]
    assert data["SimilarityScore"] == 42.5
    assert set(json.loads(data["ConfidenceThresholds"])) == {"0.0001", "0.001", "0.01"}
    # Parameters are still checked as the API checks them.
    both_id = compare(
        faulty, params(source="oss://qa-tests:fixed/x.jpg", SourceImageType="IDPic", TargetImageType="IDPic")
    )
    assert both_id.json()["Code"] == "InvalidParam.FacePicNotGiven"


def test_a_delay_alone_then_served_as_usual(faulty: httpx.Client) -> None:
    started = time.perf_counter()
    response = compare(faulty, params(source="oss://qa-tests:slow/missing.jpg"))
    assert time.perf_counter() - started >= 0.2
    assert response.json()["Code"] == "InvalidParam.ImageNotFound"  # the real answer, after the delay


def test_a_share_of_requests(faulty: httpx.Client) -> None:
    missing = "oss://qa-tests:missing/x.jpg"  # unmatched requests are answered ImageNotFound, quickly
    codes = [compare(faulty, params(source=missing, AccessKeyId="LTAI5tHALF")).json()["Code"] for _ in range(200)]
    injected = codes.count("ServiceUnavailable")
    assert injected + codes.count("InvalidParam.ImageNotFound") == 200
    assert 60 <= injected <= 140  # share 0.5 of 200: mean 100, sd 7


def test_visible_on_readyz(faulty: httpx.Client) -> None:
    faults = faulty.get("/readyz").json()["faults"]
    assert faults.startswith("INJECTING: 6 rules from ")
    assert "throttled" in faults


def test_reloaded_on_change_and_a_bad_edit_keeps_the_rules(faulty: httpx.Client, faults_file: Path) -> None:
    try:
        write_rules(faults_file, {"rules": [{"name": "everything fails", "error": "Error.InternalError"}]})
        response = compare(faulty, params())
        assert response.status_code == 500 and response.json()["Code"] == "Error.InternalError"
        assert faulty.get("/readyz").json()["faults"].startswith("INJECTING: 1 rules")
        write_rules(faults_file, '{"rules": [')
        assert compare(faulty, params()).json()["Code"] == "Error.InternalError"
        assert "last edit refused" in faulty.get("/readyz").json()["faults"]
    finally:
        write_rules(faults_file, RULES)
    assert compare(faulty, params()).status_code == 200


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"rules": [{"name": "x", "error": "Error.NoSuchThing"}]}, "unknown error code"),
        ({"rules": [{"name": "x", "error": "Error.InternalError", "score": 50}]}, "exclude each other"),
        ({"rules": [{"name": "x", "match": {"access_key_id": "A"}}]}, "needs an effect"),
        ({"rules": [{"name": "x", "match": {"image_value": "("}, "delay_ms": 5}]}, "not a regular expression"),
        ({"rules": [{"name": "x", "match": {"share": 1.5}, "delay_ms": 5}]}, "between 0 and 1"),
        ({"rules": [{"name": "x", "score": 101}]}, "between 0 and 100"),
        ({"rules": [{"name": "x", "delay_ms": 5, "colour": "red"}]}, "unknown keys"),
        ({"rules": [{"name": "x", "delay_ms": 5}, {"name": "x", "delay_ms": 6}]}, "unique"),
        ({"faults": []}, "expected"),
    ],
)
def test_bad_rules_are_refused(document: object, complaint: str) -> None:
    with pytest.raises(FaultsConfigError, match=complaint):
        parse_rules(document, error_catalog())


def test_every_contract_error_can_be_injected() -> None:
    catalog = error_catalog()
    for code in ("Throttling.User", "SignatureDoesNotMatch", "IncompleteSignature", "MissingParameter",
                 "InvalidAccessKeyId.NotFound", "Error.NoPermissionAccess", "InvalidParam.ImageNotFound",
                 "ServiceUnavailable", "Error.CompareFacesError"):  # fmt: skip
        assert catalog[code]().code == code


def test_refused_unless_enabled(faults_file: Path) -> None:
    with pytest.raises(FaultsConfigError, match="refusing to start"):
        check_fault_settings(Settings(faults_file=faults_file))
    with pytest.raises(FaultsConfigError, match="FAULTS_FILE is not"):
        check_fault_settings(Settings(faults_enabled=True))
    assert check_fault_settings(Settings()) is False


def test_serve_refuses_in_one_line_before_binding(faults_file: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COMPAREFACES_FAULTS_FILE": str(faults_file)}
    env.pop("COMPAREFACES_FAULTS_ENABLED", None)
    port = str(free_port())
    done = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", port],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "refusing to start" in done.stderr


def test_what_an_sdk_caller_sees(faulty: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The official Tea SDK (V3 signatures: the key id comes from its Authorization header)."""
    pytest.importorskip("alibabacloud_cloudauth20190307", reason="needs the Tea SDK (the test extra)")
    from tests.conformance.clients import Credentials, PythonTea

    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    driver = PythonTea(f"{faulty.base_url.host}:{faulty.base_url.port}")
    no_face = driver.call(Credentials("LTAI5tQANOFACE", "any-secret"), params())
    assert (no_face.ok, no_face.status, no_face.code) == (False, 400, "Error.NoFaceDetected")
    throttled = driver.call(Credentials("LTAI5tOTHER", "any-secret"), params(source="oss://qa-tests:throttle/a.jpg"))
    assert (throttled.status, throttled.code) == (429, "Throttling.User")
    assert driver.own_error_type(throttled)
    fixed = driver.call(Credentials("LTAI5tOTHER", "any-secret"), params(source="oss://qa-tests:fixed/a.jpg"))
    assert fixed.ok and fixed.score == 42.5
