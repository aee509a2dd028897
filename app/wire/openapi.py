"""The OpenAPI description of ``POST /`` (served at ``/openapi.json``; the fuzz tests read it).

It describes what the server accepts and answers, not everything Alibaba's RPC gateway has: the
common parameters the SDKs add (signature, timestamp, nonce...) are accepted but left out here.
Every parameter may also come in the query string; the body wins.
"""

from __future__ import annotations

from typing import Any

IMAGE_TYPE = {"type": "string", "enum": ["FacePic", "IDPic"]}
IMAGE_VALUE = {
    "type": "string",
    "description": "base64://<image bytes>, http(s)://<public URL> or oss://<bucket>:<key>; "
    "JPEG, PNG, BMP or WebP; keep each within 2 MB (this server takes up to "
    "COMPAREFACES_MAX_IMAGE_BYTES, 5 MiB by default)",
}
FORMAT = {"type": "string", "enum": ["JSON", "json", "XML", "xml"]}

ERROR_BODY = {
    "type": "object",
    "required": ["RequestId", "HostId", "Code", "Message", "Recommend"],
    "properties": {name: {"type": "string"} for name in ["RequestId", "HostId", "Code", "Message", "Recommend"]},
    "additionalProperties": False,
}
SUCCESS_BODY = {
    "type": "object",
    "required": ["RequestId", "Code", "Data", "Success"],
    "properties": {
        "RequestId": {"type": "string"},
        "Code": {"type": "string", "enum": ["1"]},
        "Success": {"type": "boolean", "enum": [True]},
        "Data": {
            "type": "object",
            "required": ["SimilarityScore", "ConfidenceThresholds"],
            "properties": {
                "SimilarityScore": {"type": "number", "minimum": 0, "maximum": 100},
                "ConfidenceThresholds": {"type": "string", "description": "a JSON object: FAR -> score threshold"},
            },
        },
    },
    "additionalProperties": False,
}
XML = {"text/xml": {"schema": {"type": "string"}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_BODY}, **XML}}


COMPARE_FACES_OPERATION: dict[str, Any] = {
    "operationId": "CompareFaces",
    "parameters": [
        {"name": "Action", "in": "query", "required": False, "schema": {"type": "string", "enum": ["CompareFaces"]}},
        {"name": "Version", "in": "query", "required": False, "schema": {"type": "string", "enum": ["2019-03-07"]}},
        {"name": "Format", "in": "query", "required": False, "schema": FORMAT},
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["SourceImageType", "SourceImageValue", "TargetImageType", "TargetImageValue"],
                    "properties": {
                        "Action": {"type": "string", "enum": ["CompareFaces"]},
                        "Version": {"type": "string", "enum": ["2019-03-07"]},
                        "Format": FORMAT,
                        "SourceImageType": IMAGE_TYPE,
                        "SourceImageValue": IMAGE_VALUE,
                        "TargetImageType": IMAGE_TYPE,
                        "TargetImageValue": IMAGE_VALUE,
                    },
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "the comparison",
            "content": {"application/json": {"schema": SUCCESS_BODY}, **XML},
        },
        "400": _error("invalid parameter, image, signature or version; no face"),
        "403": _error("InvalidParam.ParamMissing (an image value is missing), Error.NoPermissionAccess"),
        "404": _error("InvalidAction.NotFound, InvalidAccessKeyId.NotFound"),
        "429": _error("Throttling.User (with x-acs-retry-after, milliseconds)"),
        "500": _error("Error.InternalError"),
        "503": _error("ServiceUnavailable (inference time budget exceeded)"),
    },
}
