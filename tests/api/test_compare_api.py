"""The real server, real photos, over HTTP: the success shape and the face rules."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import urlencode

import cv2
import httpx
import numpy as np
import pytest

from app.engine.calibration import Calibration
from app.engine.packs import BUNDLED_CALIBRATIONS
from app.engine.strata import ADULT
from app.settings import Settings
from tests.conftest import compare
from tests.helpers.images import astronaut_bgr, astronaut_face_crop, b64, encode, lfw_bgr, lfw_photo

THRESHOLD_KEYS = ["0.0001", "0.001", "0.01"]


def face_pair(
    client: httpx.Client, first: bytes, second: bytes, first_type: str = "FacePic", second_type: str = "FacePic"
) -> httpx.Response:
    return compare(
        client,
        {
            "SourceImageType": first_type,
            "SourceImageValue": b64(first),
            "TargetImageType": second_type,
            "TargetImageValue": b64(second),
        },
    )


def score_of(response: httpx.Response) -> float:
    assert response.status_code == 200, response.text
    return float(response.json()["Data"]["SimilarityScore"])


def test_success_body_has_exact_types(client: httpx.Client) -> None:
    photo = encode(astronaut_bgr())
    response = face_pair(client, photo, encode(astronaut_face_crop()))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"RequestId", "Code", "Data", "Success"}
    assert body["Code"] == "1" and body["Success"] is True
    assert response.headers["x-acs-request-id"] == body["RequestId"]
    assert re.fullmatch(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}", body["RequestId"])
    data = body["Data"]
    assert isinstance(data["SimilarityScore"], float) and 0 <= data["SimilarityScore"] <= 100
    assert isinstance(data["ConfidenceThresholds"], str)
    thresholds = json.loads(data["ConfidenceThresholds"])
    assert list(thresholds) == THRESHOLD_KEYS
    assert all(re.fullmatch(r"\d{1,3}\.\d{2}", value) for value in thresholds.values())
    # The face-photo scale is anchored on all face pairs' thresholds: FAR 1e-4, 1e-3, 1e-2 on 90, 80, 70;
    # an adult pair is answered with the thresholds measured on adult pairs.
    calibration = Calibration.load(BUNDLED_CALIBRATIONS / "default.json")
    assert calibration.all_pairs_thresholds("FacePic-FacePic") == pytest.approx({"0.0001": 90, "0.001": 80, "0.01": 70})
    assert thresholds == {
        far: f"{value:.2f}" for far, value in calibration.thresholds("FacePic-FacePic", ADULT).items()
    }
    assert data["SimilarityScore"] > 90  # the same photo, cropped


def test_xml_success(client: httpx.Client) -> None:
    photo = b64(encode(astronaut_bgr()))
    response = compare(
        client,
        {
            "Format": "XML",
            "SourceImageType": "FacePic",
            "SourceImageValue": photo,
            "TargetImageType": "FacePic",
            "TargetImageValue": photo,
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml;charset=utf-8"  # exactly: the Tea SDKs compare it
    assert response.text.startswith("<?xml version='1.0' encoding='UTF-8'?>")
    root = ET.fromstring(response.text)
    assert root.tag == "CompareFacesResponse"
    assert root.findtext("Code") == "1" and root.findtext("Success") == "true"
    assert float(root.findtext("Data/SimilarityScore") or "nan") > 99
    assert list(json.loads(root.findtext("Data/ConfidenceThresholds") or "{}")) == THRESHOLD_KEYS


def test_same_person_scores_above_different_people(client: httpx.Client) -> None:
    same = score_of(face_pair(client, lfw_photo("Al_Gore", 1), lfw_photo("Al_Gore", 2)))
    other = score_of(face_pair(client, lfw_photo("Al_Gore", 1), lfw_photo("Ahmed_Chalabi", 1)))
    assert same > 80 > 70 > other


def test_params_in_query_string_and_header_action(client: httpx.Client) -> None:
    photo = b64(encode(astronaut_face_crop()))
    params = {
        "SourceImageType": "FacePic",
        "SourceImageValue": photo,
        "TargetImageType": "FacePic",
        "TargetImageValue": photo,
    }
    # Action/version in headers (V3 SDKs), parameters in the body.
    response = client.post("/", data=params, headers={"x-acs-action": "CompareFaces", "x-acs-version": "2019-03-07"})
    assert score_of(response) > 99
    # Everything in the query string.
    small = b64(encode(cv2.resize(astronaut_face_crop(), (105, 120))))
    assert (
        score_of(compare(client, {**params, "SourceImageValue": small, "TargetImageValue": small}, in_query=True)) > 99
    )


def test_body_wins_over_query(client: httpx.Client) -> None:
    photo = b64(encode(astronaut_face_crop()))
    response = client.post(
        "/",
        params={"Action": "CompareFaces", "Version": "2019-03-07", "SourceImageType": "Nonsense"},
        data={
            "SourceImageType": "FacePic",
            "SourceImageValue": photo,
            "TargetImageType": "FacePic",
            "TargetImageValue": photo,
        },
    )
    assert response.status_code == 200, response.text


def test_chunked_body(client: httpx.Client) -> None:
    photo = b64(encode(astronaut_face_crop()))
    form = urlencode(
        {
            "Action": "CompareFaces",
            "Version": "2019-03-07",
            "SourceImageType": "FacePic",
            "SourceImageValue": photo,
            "TargetImageType": "FacePic",
            "TargetImageValue": photo,
        }
    ).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: httpx sends Transfer-Encoding: chunked
        for start in range(0, len(form), 1000):
            yield form[start : start + 1000]

    response = client.post("/", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert score_of(response) > 99


def test_largest_face_of_a_group_photo_is_used(client: httpx.Client) -> None:
    big, small = lfw_bgr("Al_Gore", 1), lfw_bgr("Ahmed_Chalabi", 1)
    group = np.full((420, 640, 3), 200, np.uint8)
    group[80:330, 20:270] = big  # 250 px photo
    group[150:275, 400:525] = cv2.resize(small, (125, 125))  # half size
    score_big = score_of(face_pair(client, encode(group), lfw_photo("Al_Gore", 2)))
    score_small = score_of(face_pair(client, encode(group), lfw_photo("Ahmed_Chalabi", 2)))
    assert score_big > 80 and score_small < 70


def test_id_card_portrait(client: httpx.Client) -> None:
    """A 102x126 chip portrait with the face filling the frame is found and matched."""
    photo = lfw_bgr("Al_Gore", 3)
    portrait = cv2.resize(photo[40:215, 55:197], (102, 126), interpolation=cv2.INTER_AREA)
    response = face_pair(client, lfw_photo("Al_Gore", 4), encode(portrait, quality=80), "FacePic", "IDPic")
    assert score_of(response) > 70
    thresholds = json.loads(response.json()["Data"]["ConfidenceThresholds"])
    assert list(thresholds) == THRESHOLD_KEYS  # the FacePic-IDPic calibration
    other = face_pair(client, lfw_photo("Ahmed_Chalabi", 2), encode(portrait, quality=80), "IDPic", "FacePic")
    assert score_of(other) < float(json.loads(other.json()["Data"]["ConfidenceThresholds"])["0.01"])


def test_image_formats_and_exif_orientation(client: httpx.Client) -> None:
    from io import BytesIO

    from PIL import Image

    face = astronaut_face_crop()
    reference = encode(face)
    for ext in (".png", ".bmp", ".webp"):
        assert score_of(face_pair(client, reference, encode(face, ext))) > 95, ext
    # Rotated pixels with an EXIF tag saying "rotate 90 CW to display".
    rotated = cv2.rotate(face, cv2.ROTATE_90_COUNTERCLOCKWISE)
    image = Image.fromarray(cv2.cvtColor(rotated, cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=92)
    assert score_of(face_pair(client, reference, buffer.getvalue())) > 95


def test_base64_with_data_url_header(client: httpx.Client) -> None:
    photo = encode(astronaut_face_crop())
    value = "base64://data:image/jpeg;base64," + b64(photo)[len("base64://") :]
    response = compare(
        client,
        {
            "SourceImageType": "FacePic",
            "SourceImageValue": value,
            "TargetImageType": "FacePic",
            "TargetImageValue": b64(photo),
        },
    )
    assert score_of(response) > 99


def test_health_endpoints(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and "NOT CHECKED" in ready["signatures"]


def test_large_jpeg_decoded_at_reduced_scale_still_matches(client: httpx.Client) -> None:
    """A 3000x3000 JPEG is decoded at 1/2 scale (JPEG_DECODE_MIN_SIDE 1280) and matches as well."""
    big = cv2.resize(lfw_bgr("Al_Gore", 1), (3000, 3000), interpolation=cv2.INTER_CUBIC)
    reduced = score_of(face_pair(client, encode(big, quality=85), lfw_photo("Al_Gore", 2)))
    original = score_of(face_pair(client, lfw_photo("Al_Gore", 1), lfw_photo("Al_Gore", 2)))
    assert reduced > 80 and abs(reduced - original) < 5


def test_micro_batched_server_gives_the_same_scores(server_settings: Settings, client: httpx.Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.helpers.server import run_server

    pairs = [(lfw_photo("Al_Gore", 1), lfw_photo("Al_Gore", n)) for n in (2, 3, 4)]
    pairs.append((lfw_photo("Al_Gore", 1), lfw_photo("Ahmed_Chalabi", 1)))
    expected = [score_of(face_pair(client, a, b)) for a, b in pairs]
    batched = server_settings.model_copy(update={"recognizer_batch_window_ms": 20.0})
    with run_server(batched) as url, httpx.Client(base_url=url, timeout=60) as other, ThreadPoolExecutor(4) as pool:
        scores = list(pool.map(lambda pair: score_of(face_pair(other, *pair)), pairs))
    assert scores == pytest.approx(expected, abs=0.05)
