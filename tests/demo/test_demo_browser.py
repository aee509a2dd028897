"""The demo page in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``)
driven by Selenium uploads photos from ../shared and checks what a person sees. Full-page
screenshots are saved under ``artifacts/browser/`` (git-ignored)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.demo.conftest import KeyedServer, no_face, two_faces
from tests.helpers.images import LFW, require_lfw
from tests.helpers.server import REPO

ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Loopback only: no background traffic, and no name resolved through the system resolver.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1280,1400",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the test extra)")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    service = Service(executable_path=CHROMEDRIVER, log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_lfw()
    folder = tmp_path_factory.mktemp("photos")
    files = {
        "bush-1.jpg": (LFW / "George_W_Bush" / "George_W_Bush_0001.jpg").read_bytes(),
        "bush-2.jpg": (LFW / "George_W_Bush" / "George_W_Bush_0002.jpg").read_bytes(),
        "two-people.jpg": two_faces(),
        "serena.jpg": (LFW / "Serena_Williams" / "Serena_Williams_0001.jpg").read_bytes(),
        "no-face.jpg": no_face(),
        "notes.txt": b"this is not a photo",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


def screenshot(driver: Any, name: str) -> Path:
    """The whole page, not just the window (Chromium's DevTools capture)."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def open_page(driver: Any, base_url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base_url + "/demo")
    WebDriverWait(driver, 30).until(lambda d: d.find_element("tag name", "body").get_attribute("data-state") == "ready")


def run_comparison(driver: Any, source: Path, target: Path, *, target_type: str = "FacePic") -> None:
    from selenium.webdriver.support.ui import Select, WebDriverWait

    Select(driver.find_element("id", "type-target")).select_by_visible_text(target_type)
    driver.find_element("id", "file-source").send_keys(str(source))
    driver.find_element("id", "file-target").send_keys(str(target))  # both chosen: the page compares
    WebDriverWait(driver, 60).until(lambda d: d.find_element("tag name", "body").get_attribute("data-state") == "done")


def texts(driver: Any, selector: str) -> list[str]:
    return [node.text for node in driver.find_elements("css selector", selector)]


def test_same_person(browser: Any, server: str, photos: dict[str, Path]) -> None:
    open_page(browser, server)
    run_comparison(browser, photos["bush-1.jpg"], photos["bush-2.jpg"])
    score = float(browser.find_element("id", "score").text)
    assert score > 90
    assert browser.find_element("id", "verdict").text == (
        "Same person: fewer than 1 in 10,000 pairs of strangers score this high."
    )
    for side in ("source", "target"):
        assert len(browser.find_elements("css selector", f"#overlay-{side} .box.compared")) == 1
        assert len(browser.find_elements("css selector", f"#overlay-{side} .landmark")) == 5
        box = browser.find_element("css selector", f"#overlay-{side} .box.compared")
        assert box.size["width"] > 30 and box.size["height"] > 30  # drawn over the photo, not collapsed
        assert browser.find_element("id", f"crop-{side}").get_attribute("src").startswith("data:image/png")
    ticks = browser.find_elements("css selector", "#ticks .tick")
    assert sorted(tick.get_attribute("data-far") for tick in ticks) == ["0.0001", "0.001", "0.01"]
    api = browser.find_element("id", "api-json").text  # the body as received
    assert api.startswith('{"RequestId":"') and '"Code":"1"' in api and api.endswith('"Success":true}')
    thresholds = json.loads(json.loads(api)["Data"]["ConfidenceThresholds"])  # the ticks: this answer's
    assert texts(browser, "#ticks .tick span") == [thresholds[far] for far in ("0.01", "0.001", "0.0001")]
    assert texts(browser, "#verdicts td:first-child") == [
        "1 in 100 strangers",
        "1 in 1,000 strangers",
        "1 in 10,000 strangers",
    ]
    assert texts(browser, "#verdicts td.same") == ["same person"] * 3
    assert json.loads(api)["Data"]["SimilarityScore"] == pytest.approx(score, abs=0.005)  # shown to 2 decimals
    screenshot(browser, "01-same-person")
    snippets_run(
        photos["bush-1.jpg"].parent,
        browser.find_element("id", "curl").get_attribute("textContent"),
        browser.find_element("id", "python").get_attribute("textContent"),
        score,
    )


def snippets_run(folder: Path, curl: str, python: str, score: float) -> None:
    """The page's curl and Python SDK snippets, run as a person would paste them, get the same score.
    In open mode the Python snippet needs no key in the environment."""
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_ACCESS_KEY")}
    env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    if shutil.which("curl") and shutil.which("base64"):
        out = subprocess.run(["bash", "-c", curl], cwd=folder, env=env, capture_output=True, text=True, timeout=60)
        assert json.loads(out.stdout)["Data"]["SimilarityScore"] == pytest.approx(score, abs=0.005)
    pytest.importorskip("alibabacloud_cloudauth20190307", reason="needs the Tea SDK (the test extra)")
    out = subprocess.run(
        [sys.executable, "-c", python], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[0]) == pytest.approx(score, abs=0.005)


def test_the_largest_face_is_the_one_compared(browser: Any, server: str, photos: dict[str, Path]) -> None:
    open_page(browser, server)
    run_comparison(browser, photos["two-people.jpg"], photos["serena.jpg"], target_type="IDPic")
    boxes = browser.find_elements("css selector", "#overlay-source .box")
    assert len(boxes) == 2
    compared = browser.find_element("css selector", "#overlay-source .box.compared")
    other = browser.find_element("css selector", "#overlay-source .box.other")
    assert compared.size["width"] * compared.size["height"] > other.size["width"] * other.size["height"]
    assert "2 faces found" in browser.find_element("id", "faces-source").text
    # The larger face is Bush's, the target Serena Williams': different people at every FAR, against
    # the FacePic-IDPic thresholds.
    score = float(browser.find_element("id", "score").text)
    assert score < 70
    for row in browser.find_elements("css selector", "#verdicts tbody tr"):
        threshold, verdict = (cell.text for cell in row.find_elements("css selector", "td")[1:])
        assert verdict == ("same person" if score >= float(threshold) else "different people")
    assert texts(browser, "#verdicts td.different") == ["different people"] * 3
    screenshot(browser, "02-two-faces-largest-compared")


def test_errors_are_shown_as_the_apis_code_and_message(browser: Any, server: str, photos: dict[str, Path]) -> None:
    open_page(browser, server)
    run_comparison(browser, photos["bush-1.jpg"], photos["no-face.jpg"])
    assert browser.find_element("id", "error-code").text == "Error.NoFaceDetected"
    assert browser.find_element("id", "error-message").text == "No face detected from given images."
    assert not browser.find_element("id", "outcome").is_displayed()
    assert "Error.NoFaceDetected" in browser.find_element("id", "faces-target").text
    assert len(browser.find_elements("css selector", "#overlay-source .box.compared")) == 1  # the other still shown
    screenshot(browser, "03-no-face")

    open_page(browser, server)
    run_comparison(browser, photos["notes.txt"], photos["bush-2.jpg"])
    assert browser.find_element("id", "error-code").text == "InvalidParam.ImageValuePatternError"
    assert "not a photo this server can read" in browser.find_element("id", "error-why").text
    assert "not a photo this server can read" in browser.find_element("id", "faces-source").text  # no "pattern"
    assert browser.find_element("id", "name-source").text == "notes.txt (19 bytes)"  # not "0 KB"
    screenshot(browser, "04-not-an-image")


def test_signing_in_the_page_when_keys_are_checked(
    browser: Any, keyed_demo: KeyedServer, photos: dict[str, Path]
) -> None:
    open_page(browser, keyed_demo.url)
    assert browser.find_element("id", "keys").is_displayed()
    browser.find_element("id", "file-source").send_keys(str(photos["bush-1.jpg"]))
    browser.find_element("id", "file-target").send_keys(str(photos["bush-2.jpg"]))
    from selenium.webdriver.support.ui import WebDriverWait

    body = browser.find_element("tag name", "body")
    WebDriverWait(browser, 30).until(lambda d: body.get_attribute("data-state") == "waiting-for-key")
    assert browser.find_element("id", "status").text == "enter the AccessKeyId and secret, then Compare"
    assert not browser.find_element("id", "result").is_displayed()  # nothing sent before a key is typed
    open_page(browser, keyed_demo.url)
    browser.find_element("id", "key-id").send_keys(keyed_demo.key_id)
    browser.find_element("id", "key-secret").send_keys("not-the-secret")
    run_comparison(browser, photos["bush-1.jpg"], photos["bush-2.jpg"])
    assert browser.find_element("id", "error-code").text == "SignatureDoesNotMatch"
    assert "SignatureDoesNotMatch" in browser.find_element("id", "analysis-error").text  # no way around it
    screenshot(browser, "05-signed-wrong-secret")

    secret = browser.find_element("id", "key-secret")
    secret.clear()
    secret.send_keys(keyed_demo.secret)
    browser.find_element("id", "compare").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_element("id", "score").text != "")
    WebDriverWait(browser, 60).until(lambda d: d.find_element("tag name", "body").get_attribute("data-state") == "done")
    assert float(browser.find_element("id", "score").text) > 90
    assert not browser.find_element("id", "error").is_displayed()
    screenshot(browser, "06-signed")


@pytest.fixture(scope="module")
def faulty_demo(server_settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.helpers.server import run_server

    rules = tmp_path_factory.mktemp("faults") / "faults.json"
    rules.write_text('{"rules": [{"name": "every score 42.5", "score": 42.5}]}')
    rules.chmod(0o600)  # as the keys file: refused when others could rewrite it
    settings = server_settings.model_copy(update={"faults_file": rules, "faults_enabled": True})
    with run_server(settings) as url:
        yield url


def test_fault_injection_is_visible_on_the_page(browser: Any, faulty_demo: str, photos: dict[str, Path]) -> None:
    open_page(browser, faulty_demo)
    banner = browser.find_element("id", "faults-banner")
    assert banner.is_displayed() and "INJECTING: 1 rules" in banner.text
    run_comparison(browser, photos["bush-1.jpg"], photos["bush-2.jpg"])
    assert browser.find_element("id", "score").text == "42.50"  # what the app gets
    note = browser.find_element("id", "engine-note").text
    measured = re.search(r"The API answered 42\.5; the engine measured (\d+(?:\.\d+)?)", note)
    assert measured and float(measured.group(1)) > 80, note  # two photos of one man: the engine's own score
    screenshot(browser, "07-fault-injection")


def viewport(driver: Any, width: int, height: int) -> None:
    """Lay the page out as a device of this size would (a phone: mobile viewport, touch)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700},
    )


def rect(driver: Any, selector: str) -> dict[str, float]:
    return driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};",
        selector,
    )


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 800)])
def test_the_page_fits_a_phone_and_a_laptop(
    browser: Any, server: str, photos: dict[str, Path], width: int, height: int
) -> None:
    viewport(browser, width, height)
    try:
        open_page(browser, server)
        run_comparison(browser, photos["two-people.jpg"], photos["bush-2.jpg"])
        page_width = browser.execute_script("return document.documentElement.scrollWidth")
        wide = browser.execute_script(  # what sticks out, to say in the failure
            "return [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > arguments[0])"
            ".map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))",
            width,
        )
        assert page_width <= width, f"the page is {page_width} px wide in a {width} px window: {wide[:8]}"
        for selector in ("#img-source", "#img-target", "#crop-source", "#crop-target", "#scale", "#verdicts"):
            box = rect(browser, selector)
            assert box["left"] >= 0 and box["right"] <= width, (selector, box)
        labels = [rect(browser, f'#ticks .tick[data-far="{far}"] span') for far in ("0.01", "0.001", "0.0001")]
        for a, b in zip(labels, labels[1:], strict=False):  # neighbouring threshold labels do not overlap
            assert a["right"] <= b["left"] or a["bottom"] <= b["top"] or b["bottom"] <= a["top"], labels
        assert browser.find_element("css selector", "#overlay-source .box.other .label").text == "other face"
        sure = browser.find_element("css selector", "#faces-source .detector").text  # not an unexplained "face 0.84"
        assert re.fullmatch(r"The detector is \d+%, \d+% sure these are faces\.", sure), sure
        screenshot(browser, f"08-layout-{width}x{height}")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.fixture(scope="module")
def small_cap_demo(server_settings: Any) -> Iterator[str]:
    from tests.helpers.server import run_server

    with run_server(server_settings.model_copy(update={"max_image_bytes": 100_000})) as url:
        yield url


def test_a_photo_over_the_cap_is_explained(
    browser: Any, small_cap_demo: str, photos: dict[str, Path], tmp_path: Path
) -> None:
    import cv2

    large = tmp_path / "large.jpg"
    image = cv2.imread(str(photos["bush-1.jpg"]))
    cv2.imwrite(
        str(large), cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 98]
    )
    assert large.stat().st_size > 100_000
    open_page(browser, small_cap_demo)
    run_comparison(browser, large, photos["bush-2.jpg"])
    assert browser.find_element("id", "error-code").text == "InvalidParam.ImageValuePatternError"  # the contract's
    why = browser.find_element("id", "error-why").text
    assert why.startswith("The source photo is ") and "at most 97.7 KB per image (COMPAREFACES_MAX_IMAGE_BYTES" in why
    screenshot(browser, "09-over-the-size-cap")
