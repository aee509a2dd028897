"""Drives one pinned official Python SDK set (run by that set's own interpreter, not the project's).

One JSON call per stdin line, one JSON outcome per stdout line, like ``node/driver.js``. The SDKs
build, sign, send and parse everything; this only reports what the caller sees.

call:    {"style": "tea" | "callapi" | "core" | "common", "endpoint": "127.0.0.1:PORT", "protocol"?, "ca"?,
          "keyId", "secret", "token"?, "credentials"?: "provider-ak" | "provider-sts" | "env",
          "algorithm"?: "v2" | "ACS3-HMAC-SM3" | ..., "placement"?: "body" | "query",
          "format"?: "XML", "params": {...}}
outcome: {"ok": true, "status", "code", "score", "thresholds", "requestId", "model"}
         {"ok": false, "status", "code", "errorType", "message", "requestId"}
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
import xml.etree.ElementTree as ET
from contextlib import suppress
from importlib import metadata
from typing import Any

ACTION, VERSION = "CompareFaces", "2019-03-07"
SNAKE = {
    "SourceImageType": "source_image_type",
    "SourceImageValue": "source_image_value",
    "TargetImageType": "target_image_type",
    "TargetImageValue": "target_image_value",
}


def versions() -> dict[str, str]:
    names = (
        "alibabacloud-cloudauth20190307",
        "alibabacloud-tea-openapi",
        "alibabacloud-tea-rpc",
        "alibabacloud-credentials",
        "aliyun-python-sdk-core",
        "aliyun-python-sdk-cloudauth",
    )
    found = {}
    for name in names:
        with suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def failure(error: BaseException) -> dict[str, Any]:
    """What the caller sees of an SDK exception, whichever generation raised it."""
    data = getattr(error, "data", None)
    data = data if isinstance(data, dict) else {}
    status = getattr(error, "status_code", None) or getattr(error, "statusCode", None) or data.get("statusCode")
    request_id = getattr(error, "request_id", None) or data.get("RequestId") or data.get("requestId")
    message = str(getattr(error, "message", None) or error)
    if not status and re.match(r"code: \d{3}, ", message):  # 1.x (tea-rpc) has it only in its message
        status = message[6:9]
    return {
        "ok": False,
        "status": int(status or 0),
        "code": str(getattr(error, "code", None) or ""),
        "errorType": type(error).__name__,
        "message": message,
        "requestId": str(request_id or ""),
    }


def from_body(body: dict[str, Any], status: int, model: str) -> dict[str, Any]:
    assert body["Success"] is True, body
    return {
        "ok": True,
        "status": status,
        "code": body["Code"],
        "score": body["Data"]["SimilarityScore"],
        "thresholds": body["Data"]["ConfidenceThresholds"],
        "requestId": body["RequestId"],
        "model": model,
    }


def from_xml(text: str | bytes, status: int) -> dict[str, Any]:
    root = ET.fromstring(text)
    if root.tag == "Error":
        return {
            "ok": False,
            "status": status,
            "code": root.findtext("Code") or "",
            "errorType": "Error",
            "message": root.findtext("Message") or "",
            "requestId": root.findtext("RequestId") or "",
        }
    assert root.findtext("Success") == "true"
    return {
        "ok": True,
        "status": status,
        "code": root.findtext("Code"),
        "score": float(root.findtext("Data/SimilarityScore") or "nan"),
        "thresholds": root.findtext("Data/ConfidenceThresholds"),
        "requestId": root.findtext("RequestId"),
        "model": "xml",
    }


# --- Tea (alibabacloud-cloudauth20190307 on tea-openapi, or on tea-rpc for 1.x)


def tea_credential(call: dict[str, Any]) -> Any:
    """A credentials-provider client (``alibabacloud-credentials``), or None for keys in the Config."""
    kind = call.get("credentials")
    if not kind:
        return None
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_credentials.models import Config as CredentialConfig

    if kind == "env":  # the default chain, which reads ALIBABA_CLOUD_ACCESS_KEY_ID & co. (set at start)
        return CredentialClient()
    if kind == "provider-sts":
        config = CredentialConfig(
            type="sts",
            access_key_id=call["keyId"],
            access_key_secret=call["secret"],
            security_token=call["token"],
        )
    else:
        config = CredentialConfig(type="access_key", access_key_id=call["keyId"], access_key_secret=call["secret"])
    return CredentialClient(config)


def tea_config(call: dict[str, Any], module: Any) -> Any:
    credential = tea_credential(call)
    protocol = call.get("protocol") or "http"
    if credential is not None:
        config = module.Config(credential=credential, endpoint=call["endpoint"], protocol=protocol)
    else:
        config = module.Config(
            access_key_id=call["keyId"],
            access_key_secret=call["secret"],
            security_token=call.get("token") or None,
            endpoint=call["endpoint"],
            protocol=protocol,
        )
    if call.get("ca"):  # https: trust this CA (docs/sdks-and-keys.md, "HTTPS")
        config.ca = call["ca"]
    if call.get("algorithm"):
        config.signature_algorithm = call["algorithm"]
    return config


def call_tea(call: dict[str, Any]) -> dict[str, Any]:
    from alibabacloud_cloudauth20190307 import models
    from alibabacloud_cloudauth20190307.client import Client
    from alibabacloud_tea_util import models as util_models

    fields = {SNAKE[k]: v for k, v in call["params"].items()}
    request = models.CompareFacesRequest(**fields)
    runtime = util_models.RuntimeOptions()
    if call.get("format"):  # only through the runtime's extra query parameters
        if not hasattr(util_models, "ExtendsParameters"):
            return {
                "ok": False,
                "status": 0,
                "code": "n/a",
                "errorType": "NotSupported",
                "message": "",
                "requestId": "",
            }
        runtime.extends_parameters = util_models.ExtendsParameters(queries={"Format": call["format"]})
    try:
        from alibabacloud_tea_openapi import models as open_api_models
    except ImportError:  # 1.x: tea-rpc
        from alibabacloud_tea_rpc import models as open_api_models
    client = Client(tea_config(call, open_api_models))
    try:
        if hasattr(client, "compare_faces_with_options"):
            response = client.compare_faces_with_options(request, runtime)
        else:
            response = client.compare_faces(request, runtime)
    except Exception as error:  # noqa: BLE001 (the SDK's own, reported by type)
        return failure(error)
    assert isinstance(response, models.CompareFacesResponse), type(response)
    if hasattr(models, "CompareFacesResponseBody"):
        body = response.body
        assert isinstance(body, models.CompareFacesResponseBody)
        assert isinstance(body.data, models.CompareFacesResponseBodyData)
    else:  # 1.x: the fields on the response itself
        body = response
        assert isinstance(body.data, models.CompareFacesResponseData)
    assert body.success is True
    return {
        "ok": True,
        "status": int(getattr(response, "status_code", 0) or 200),
        "code": body.code,
        "score": body.data.similarity_score,
        "thresholds": body.data.confidence_thresholds,
        "requestId": body.request_id,
        "model": type(response).__name__,
    }


def call_callapi(call: dict[str, Any]) -> dict[str, Any]:
    """Tea's generic ``call_api`` (RPC style), the parameters in the body or the query string."""
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_openapi.client import Client
    from alibabacloud_tea_util import models as util_models

    client = Client(tea_config(call, open_api_models))
    params = open_api_models.Params(
        action=ACTION,
        version=VERSION,
        protocol="HTTPS",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="string" if call.get("format") else "json",
    )
    query = {"Format": call["format"]} if call.get("format") else {}
    if call.get("placement") == "query":
        request = open_api_models.OpenApiRequest(query={**query, **call["params"]})
    else:
        request = open_api_models.OpenApiRequest(query=query or None, body=dict(call["params"]))
    try:
        result = client.call_api(params, request, util_models.RuntimeOptions())
    except Exception as error:  # noqa: BLE001
        return failure(error)
    status = int(result.get("statusCode") or 0)
    if call.get("format"):
        return from_xml(result["body"], status)
    return from_body(result["body"], status, "dict")


# --- The core SDK: the typed request class, or CommonRequest


def core_client(call: dict[str, Any]) -> Any:
    from aliyunsdkcore.client import AcsClient

    host, _, port = call["endpoint"].partition(":")
    verify = {"verify": call["ca"]} if call.get("ca") else {}  # https: trust this CA
    if call.get("token"):
        from aliyunsdkcore.auth.credentials import StsTokenCredential

        credential = StsTokenCredential(call["keyId"], call["secret"], call["token"])
        return AcsClient(region_id="cn-hangzhou", credential=credential, port=int(port), **verify)
    return AcsClient(call["keyId"], call["secret"], "cn-hangzhou", port=int(port), **verify)


def call_core(call: dict[str, Any]) -> dict[str, Any]:
    from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException

    host = call["endpoint"].partition(":")[0]
    if call["style"] == "core":
        from aliyunsdkcloudauth.request.v20190307.CompareFacesRequest import CompareFacesRequest

        request: Any = CompareFacesRequest()
        for name, value in call["params"].items():
            getattr(request, f"set_{name}")(value)
        request.set_endpoint(host)
    else:
        from aliyunsdkcore.request import CommonRequest

        request = CommonRequest(domain=host, version=VERSION, action_name=ACTION)
        request.set_method("POST")
        for name, value in call["params"].items():
            if call.get("placement") == "query":
                request.add_query_param(name, value)
            else:
                request.add_body_params(name, value)
    from aliyunsdkcore.http import protocol_type

    # The SDK's own constants: it compares with `is`, and a string read from anywhere else (this
    # call, a configuration file) silently means plain HTTP.
    request.set_protocol_type(protocol_type.HTTPS if call.get("protocol") == "https" else protocol_type.HTTP)
    if call.get("format"):  # do_action_with_exception asks for JSON whatever was set: the raw exchange
        request.set_accept_format(call["format"])
        status, _headers, body = core_client(call).get_response(request)
        return from_xml(body, int(status))
    try:
        body = core_client(call).do_action_with_exception(request)
    except ServerException as error:
        return {
            "ok": False,
            "status": int(error.get_http_status() or 0),
            "code": error.get_error_code(),
            "errorType": type(error).__name__,
            "message": error.get_error_msg(),
            "requestId": str(error.get_request_id() or ""),
        }
    except ClientException as error:
        return {
            "ok": False,
            "status": 0,
            "code": error.get_error_code(),
            "errorType": type(error).__name__,
            "message": error.get_error_msg(),
            "requestId": "",
        }
    return from_body(json.loads(body), 200, "json")


STYLES = {"tea": call_tea, "callapi": call_callapi, "core": call_core, "common": call_core}


def handle(line: str) -> dict[str, Any]:
    call = json.loads(line)
    if call.get("style") == "versions":
        return {"ok": True, "versions": versions()}
    try:
        return STYLES[call["style"]](call)
    except Exception:  # noqa: BLE001 (a driver bug or an SDK that failed outside its own errors)
        return {
            "ok": False,
            "status": 0,
            "code": "DriverError",
            "errorType": "DriverError",
            "message": traceback.format_exc()[-3000:],
            "requestId": "",
        }


def main() -> None:
    os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"  # never ask a cloud metadata address
    for line in sys.stdin:
        if line.strip():
            sys.stdout.write(json.dumps(handle(line)) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
