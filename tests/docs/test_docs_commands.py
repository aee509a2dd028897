"""The commands of README.md and docs/, run as written against a real server.

The curl example with a 3 MB photo (its base64 is far over Linux's 128 KiB per argument), the
sample answer the README shows (it must be the one the server returns for these photos: regenerate
it with ``UPDATE_DOCS=1``), every fault-injection recipe of docs/development.md, and the start-up
line that names the demo page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from app.settings import Settings
from tests.helpers.images import lfw_bgr, require_lfw
from tests.helpers.server import REPO, log_file, run_server, spawn_server

README = REPO / "README.md"
API_DOC = REPO / "docs" / "api.md"
DEVELOPMENT_DOC = REPO / "docs" / "development.md"
DOCUMENTED_URL = "http://127.0.0.1:8080"
PHOTO_BYTES = 3_000_000


def block_after(text: str, heading: str, language: str) -> tuple[int, int]:
    """Where the first ``language`` code block after ``heading`` starts and ends (its body)."""
    start = text.index(f"```{language}\n", text.index(heading)) + len(f"```{language}\n")
    return start, text.index("```", start)


def phone_photo(folder: Path) -> Path:
    """A photo of at least 3 MB: an LFW photo upscaled (with a little noise, as a sensor's) to phone size."""
    image = cv2.resize(lfw_bgr("George_W_Bush", 1), (2000, 2000), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    path = folder / "a.jpg"
    for quality in (90, 95, 98, 100):
        path.write_bytes(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
        if path.stat().st_size >= PHOTO_BYTES:
            return path
    raise AssertionError("no quality makes a 3 MB photo")


def id_portrait(folder: Path) -> Path:
    """An ID-card chip style portrait (102x126) of another photo of the same man."""
    photo = lfw_bgr("George_W_Bush", 2)
    path = folder / "id.jpg"
    cv2.imwrite(str(path), cv2.resize(photo[40:215, 55:197], (102, 126), interpolation=cv2.INTER_AREA))
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_lfw()
    folder = tmp_path_factory.mktemp("docs-photos")
    phone_photo(folder)
    id_portrait(folder)
    return folder


def run_bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not (shutil.which("curl") and shutil.which("base64")):
        pytest.skip("needs curl and base64")
    return subprocess.run(["bash", "-euc", script], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("doc", [README, API_DOC], ids=["README", "api.md"])
def test_the_curl_example_compares_a_3_mb_photo(doc: Path, server: str, photos: Path) -> None:
    text = doc.read_text()
    start, end = block_after(text, "## Calling it", "bash")
    assert (photos / "a.jpg").stat().st_size >= PHOTO_BYTES
    out = run_bash(text[start:end].replace(DOCUMENTED_URL, server), photos)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["Success"] is True, answer
    assert answer["Data"]["SimilarityScore"] > 90  # one man, a phone-sized photo and an ID portrait

    sample_start, sample_end = block_after(text, "## Calling it", "json")
    answer["RequestId"] = "…"
    data = json.dumps(answer["Data"], separators=(",", ":"), ensure_ascii=False)
    score, thresholds = data.split(',"ConfidenceThresholds":')
    expected = f'{{"RequestId":"…","Code":"1","Data":{score},\n "ConfidenceThresholds":{thresholds},"Success":true}}\n'
    if text[sample_start:sample_end] != expected and os.environ.get("UPDATE_DOCS") == "1":
        doc.write_text(text[:sample_start] + expected + text[sample_end:])
        text = doc.read_text()
        sample_start, sample_end = block_after(text, "## Calling it", "json")
    # The thresholds exactly; the score to 0.05 (bf16 and float32 CPUs differ in the last digits).
    sample = json.loads(text[sample_start:sample_end])
    shown = sample["Data"].pop("SimilarityScore")
    real = answer["Data"].pop("SimilarityScore")
    assert sample == answer and shown == pytest.approx(real, abs=0.05), f"{doc.name}: not the server's (UPDATE_DOCS=1)"


def recipes() -> list[tuple[str, dict[str, object]]]:
    """Every rule of the recipes table: (what it is for, the rule)."""
    text = DEVELOPMENT_DOC.read_text()
    table = text[text.index("| to test | rule |") :]
    table = table[: table.index("\n\n")]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    found = []
    for row in rows:
        purpose, rule = re.fullmatch(r"\| (.+) \| `(\{.+\})` \|", row).groups()  # type: ignore[union-attr]
        found.append((purpose, json.loads(rule)))
    return found


@pytest.fixture(scope="module")
def faulty(server_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server that starts with every recipe at once (a rule it refuses stops it here)."""
    path = tmp_path_factory.mktemp("faults") / "faults.json"
    path.write_text(json.dumps({"rules": [rule for _, rule in recipes()]}))
    path.chmod(0o600)  # a rules file others may write is refused
    with run_server(server_settings.model_copy(update={"faults_file": path, "faults_enabled": True})) as url:
        yield url, path


def use_only(path: Path, rule: dict[str, object]) -> None:
    """Swap the rules file for one holding ``rule`` alone (re-read at the next request)."""
    fresh = path.with_suffix(".new")
    fresh.write_text(json.dumps({"rules": [rule]}))
    fresh.chmod(0o600)
    os.replace(fresh, path)


def call(client: httpx.Client, url: str, source: str, target: str, **extra: str) -> httpx.Response:
    params = {"Action": "CompareFaces", "Version": "2019-03-07", "SourceImageType": "FacePic"}
    params.update(SourceImageValue=source, TargetImageType=extra.pop("target_type", "FacePic"), TargetImageValue=target)
    return client.post(url + "/", data={**params, **extra})


MISSING = "oss://qa-fixtures:none/1.jpg"  # no such object: an unmatched request is answered at once


def test_every_fault_recipe_does_what_it_says(faulty: tuple[str, Path]) -> None:
    url, path = faulty
    by_name = {rule["name"]: rule for _, rule in recipes()}
    assert set(by_name) == {
        "X: no face",
        "throttle a fifth",
        "bad signature",
        "outage",
        "slow",
        "borderline",
        "rare 500",
    }
    with httpx.Client(timeout=60) as client:
        use_only(path, by_name["X: no face"])
        assert call(client, url, MISSING, MISSING, AccessKeyId="LTAI5tX").json()["Code"] == "Error.NoFaceDetected"
        assert call(client, url, MISSING, MISSING, AccessKeyId="LTAI5tY").json()["Code"] == "InvalidParam.ImageNotFound"

        use_only(path, by_name["bad signature"])
        assert call(client, url, MISSING, MISSING, AccessKeyId="LTAI5tX").json()["Code"] == "SignatureDoesNotMatch"

        use_only(path, by_name["outage"])
        outage = call(client, url, "oss://qa-fixtures:outage/1.jpg", MISSING)
        assert (outage.status_code, outage.json()["Code"]) == (503, "ServiceUnavailable")

        use_only(path, by_name["borderline"])
        for target_type in ("FacePic", "IDPic"):
            data = call(client, url, "oss://qa-fixtures:borderline/1.jpg", MISSING, target_type=target_type).json()
            thresholds = {far: float(t) for far, t in json.loads(data["Data"]["ConfidenceThresholds"]).items()}
            score = data["Data"]["SimilarityScore"]
            assert thresholds["0.01"] <= score < thresholds["0.001"], (target_type, score, thresholds)

        use_only(path, by_name["throttle a fifth"])
        answers = [call(client, url, MISSING, MISSING) for _ in range(60)]
        throttled = [a for a in answers if a.json()["Code"] == "Throttling.User"]
        assert 0 < len(throttled) < len(answers)  # P(none of 60) = 0.8**60, 1.5e-6
        assert {(a.status_code, a.headers["x-acs-retry-after"]) for a in throttled} == {(429, "2000")}

        use_only(path, by_name["rare 500"])
        codes = [call(client, url, MISSING, MISSING).json()["Code"] for _ in range(1500)]
        assert 0 < codes.count("Error.InternalError") < 60  # P(none of 1,500) = 0.99**1500, 3e-7

        use_only(path, by_name["slow"])
        started = time.monotonic()
        late = call(client, url, MISSING, MISSING)
        assert time.monotonic() - started >= 8.0
        assert late.json()["Code"] == "InvalidParam.ImageNotFound"  # then served as usual


def test_the_start_up_log_names_the_demo_page() -> None:
    with spawn_server(log_name="docs-demo-address.log") as (url, _process):
        log = log_file("docs-demo-address.log")
        assert log is not None
        deadline = time.monotonic() + 10
        while f"demo page: {url}/demo" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = log.read_text()
        assert f"demo page: {url}/demo (open it in a browser)" in text
        assert "upload tokens are signed with a random per-process key" not in text  # open mode: not news
