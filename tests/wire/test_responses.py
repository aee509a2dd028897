import json
import xml.etree.ElementTree as ET

from app.errors import CompareFacesError, InternalError, Throttled
from app.wire.responses import error_response, success_response


def test_internal_errors_map_to_500_bodies() -> None:
    for error, code in ((InternalError(), "Error.InternalError"), (CompareFacesError(), "Error.CompareFacesError")):
        response = error_response(error, request_id="RID", xml=False)
        assert response.status_code == 500
        assert json.loads(bytes(response.body))["Code"] == code


def test_throttling_carries_retry_after() -> None:
    response = error_response(Throttled(headers={"x-acs-retry-after": "1000"}), request_id="RID", xml=False)
    assert response.status_code == 429 and response.headers["x-acs-retry-after"] == "1000"


def test_xml_success_layout() -> None:
    response = success_response(
        "CompareFaces", {"SimilarityScore": 98.7913, "ConfidenceThresholds": '{"a":"1"}'}, request_id="RID", xml=True
    )
    root = ET.fromstring(bytes(response.body))
    assert root.tag == "CompareFacesResponse"
    assert root.findtext("Data/ConfidenceThresholds") == '{"a":"1"}'
    assert root.findtext("Success") == "true"


def test_host_id_names_the_host_called_and_nothing_else() -> None:
    from app.errors import ImageTypeEmpty
    from app.wire.responses import HOST_ID, host_id

    assert host_id("cloudauth.cn-shanghai.aliyuncs.com") == "cloudauth.cn-shanghai.aliyuncs.com"
    assert host_id("127.0.0.1:18080") == "127.0.0.1:18080" and host_id("[::1]:443") == "[::1]:443"
    for junk in ("", "a<b>", 'x"y', "h:99999999", "x" * 300, "a b"):
        assert host_id(junk) == HOST_ID
    response = error_response(ImageTypeEmpty(), request_id="RID", xml=True, host=host_id("faces.example.com:8443"))
    assert ET.fromstring(bytes(response.body)).findtext("HostId") == "faces.example.com:8443"
