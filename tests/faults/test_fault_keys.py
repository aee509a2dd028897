"""Fault rules for a key match the key that signed the request, never an ``AccessKeyId`` parameter
a V3 request merely carries; the faults file is refused when others could rewrite it."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from app.auth.canonical import pct, v3_canonical_request, v3_signature, v3_string_to_sign
from app.faults import FaultsConfigError, check_fault_settings
from app.settings import Settings
from tests.faults.test_fault_injection import params, write_rules
from tests.helpers.gateway import StandInComparisons, gateway

QA, QA_SECRET = "LTAI5tQAFAULTS0000001", "QaSecret0123456789abcdefABCDEF"
OTHER, OTHER_SECRET = "LTAI5tOTHERCALLER00001", "OtherSecret0123456789abcdefABC"
RULES = {"rules": [{"name": "QA fixed score", "match": {"access_key_id": QA}, "score": 99.5}]}


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("fault-keys")
    keys = folder / "keys.json"
    keys.write_text(
        json.dumps(
            {"keys": [{"AccessKeyId": k, "AccessKeySecret": s} for k, s in ((QA, QA_SECRET), (OTHER, OTHER_SECRET))]}
        )
    )
    keys.chmod(0o600)
    faults = folder / "faults.json"
    write_rules(faults, RULES)
    settings = Settings(access_keys_file=keys, object_store_root=folder, faults_file=faults, faults_enabled=True)
    with gateway(settings, StandInComparisons()) as client:
        yield client


def v3_post(
    client: httpx.Client, key_id: str, secret: str, query: dict[str, str], form: dict[str, str]
) -> httpx.Response:
    """A CompareFaces request signed the V3 way (ACS3-HMAC-SHA256), the images in the form body."""
    body = urlencode(form, quote_via=lambda text, *_: pct(text)).encode()
    headers = {
        "host": client.base_url.netloc.decode(),
        "content-type": "application/x-www-form-urlencoded",
        "x-acs-action": "CompareFaces",
        "x-acs-version": "2019-03-07",
        "x-acs-date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    signed_headers = sorted(headers)
    canonical = v3_canonical_request(
        "POST", list(query.items()), headers, signed_headers, headers["x-acs-content-sha256"]
    )
    signature = v3_signature(secret, v3_string_to_sign(canonical))
    headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={';'.join(signed_headers)},Signature={signature}"
    )
    return client.post("/?" + urlencode(query, quote_via=lambda text, *_: pct(text)), content=body, headers=headers)


def score(response: httpx.Response) -> float:
    assert response.status_code == 200, response.text
    return float(response.json()["Data"]["SimilarityScore"])


def test_the_signing_key_matches(signed: httpx.Client) -> None:
    assert score(v3_post(signed, QA, QA_SECRET, {}, params())) == 99.5


def test_an_access_key_id_parameter_beside_a_v3_signature_does_not(signed: httpx.Client) -> None:
    for query, form in (({"AccessKeyId": QA}, params()), ({}, params(AccessKeyId=QA))):
        assert score(v3_post(signed, OTHER, OTHER_SECRET, query, form)) != 99.5


@pytest.mark.parametrize("mode", [0o644, 0o620, 0o606, 0o666])
def test_a_faults_file_others_could_rewrite_or_read_is_refused(tmp_path: Path, mode: int) -> None:
    faults = tmp_path / "faults.json"
    write_rules(faults, RULES)
    faults.chmod(mode)
    with pytest.raises(FaultsConfigError, match="chmod 600"):
        check_fault_settings(Settings(faults_file=faults, faults_enabled=True))
    faults.chmod(0o640)  # group-readable, as a Kubernetes ConfigMap mounted with fsGroup: accepted
    assert check_fault_settings(Settings(faults_file=faults, faults_enabled=True))
