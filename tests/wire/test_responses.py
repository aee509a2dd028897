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
