"""``/metrics``: what the server counts, read from its text and through a real Prometheus; the
example alert rules checked and unit-tested with ``promtool``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.settings import Settings
from tests.conformance.clients import PythonCore
from tests.helpers.images import b64
from tests.helpers.server import REPO, run_server
from tests.hostile.hostile_images import face_jpeg
from tests.scale.cluster import AK, Prometheus, prometheus, require, wait_until, write_keys

RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
STAGES = {"fetch", "queue", "decode", "detect", "align", "embed", "age"}


def pair(target_type: str = "FacePic") -> dict[str, str]:
    face = b64(face_jpeg())
    return {
        "SourceImageType": "FacePic",
        "SourceImageValue": face,
        "TargetImageType": target_type,
        "TargetImageValue": face,
    }


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_stages_and_refusals(tmp_path: Path) -> None:
    settings = Settings(access_keys_file=write_keys(tmp_path / "keys.json"), object_store_root=tmp_path)
    with run_server(settings) as url:
        sdk = PythonCore(url.removeprefix("http://"))
        scores = [sdk.call(AK, pair()).score, sdk.call(AK, pair("IDPic")).score]
        assert all(score is not None for score in scores)
        # (this SDK reports the server's SignatureDoesNotMatch as InvalidAccessKeySecret)
        assert sdk.call(AK.with_secret("WrongSecret0123456789abcdefABCD"), pair()).status == 400
        nonce = "scale-metrics-nonce-0001"
        assert sdk.call(AK, pair(), nonce=nonce).ok
        assert sdk.call(AK, pair(), nonce=nonce).code == "SignatureNonceUsed"
        text = httpx.get(f"{url}/metrics").text
    values = samples(text)
    requests = "comparefaces_requests_total"
    assert sample(values, requests, action="CompareFaces", code="OK", pair_type="FacePic-FacePic") == 2
    assert sample(values, requests, action="CompareFaces", code="OK", pair_type="FacePic-IDPic") == 1
    # a spent nonce is refused from the head, before the body (and its pair type) is read
    assert sample(values, requests, action="CompareFaces", code="SignatureNonceUsed", pair_type="-") == 1
    assert sample(values, "comparefaces_refused_requests_total", code="SignatureDoesNotMatch") == 1
    assert sample(values, "comparefaces_refused_requests_total", code="SignatureNonceUsed") == 1
    assert sample(values, "comparefaces_request_duration_seconds_count", action="CompareFaces") == 5
    for stage in STAGES:  # three comparisons ran; decode counts images
        expected = 6 if stage == "decode" else 3
        assert sample(values, "comparefaces_stage_duration_seconds_count", stage=stage) == expected, stage
        assert sample(values, "comparefaces_stage_duration_seconds_sum", stage=stage) > 0, stage
    assert sample(values, "comparefaces_comparisons_in_flight") == 0
    assert sample(values, "comparefaces_comparisons_queued") == 0
    assert sample(values, "comparefaces_nonce_store_errors_total") == 0
    info = [labels for (name, labels) in values if name == "comparefaces_model_info"]
    assert len(info) == 1 and dict(info[0])["model"] and len(dict(info[0])["calibration_sha256"]) == 16

    # Nothing that identifies a request or a person is a label value.
    label_values = {value for _, labels in values for _, value in labels}
    for secret in (AK.key_id, AK.secret, nonce, *(f"{s}" for s in scores), b64(face_jpeg())[10:40]):
        assert not any(secret in value for value in label_values), secret
    assert {
        value
        for (name, labels) in values
        if name.startswith("comparefaces_stage")
        for key, value in labels
        if key == "stage"
    } == STAGES


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    with run_server(Settings(metrics_enabled=False, object_store_root=tmp_path)) as url:
        assert httpx.get(f"{url}/metrics").status_code != 200


def test_alert_rules_check_and_fire_with_promtool() -> None:
    promtool = require("promtool", "prometheus")
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"], capture_output=True, text=True, cwd=RULES.parent
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_prometheus_scrapes_the_server(tmp_path: Path) -> None:
    require("prometheus", "prometheus")
    with run_server(Settings(object_store_root=tmp_path)) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(5):
                assert client.post("/", data={"Action": "CompareFaces", "Version": "2019-03-07", **pair()}).is_success
            assert client.post("/", data={"Action": "CompareFaces", "Version": "2019-03-07"}).status_code == 400
        with prometheus(tmp_path, [url.removeprefix("http://")], RULES) as server:
            ok = 'comparefaces_requests_total{code="OK",pair_type="FacePic-FacePic"}'
            wait_until(lambda: server.value(ok) == 5, 30, "Prometheus to scrape the server")
            read_back(server)


def read_back(server: Prometheus) -> None:
    assert server.value('up{job="comparefaces"}') == 1
    assert server.value('comparefaces_requests_total{code="InvalidParam.ImageTypeEmpty",pair_type="-"}') == 1
    p99 = server.value("histogram_quantile(0.99, sum by (le) (comparefaces_request_duration_seconds_bucket))")
    assert p99 is not None and 0 < p99 < 30
    detect = server.value('comparefaces_stage_duration_seconds_count{stage="detect"}')
    assert detect == 5
    info = server.query("comparefaces_model_info")
    assert len(info) == 1 and info[0]["metric"]["model"]  # type: ignore[index]
    rules = httpx.get(f"{server.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert sum(len(group["rules"]) for group in rules) == 8
    assert all(rule["health"] != "err" for group in rules for rule in group["rules"])
    firing = server.query('ALERTS{alertstate="firing"}')
    assert firing == [], firing
