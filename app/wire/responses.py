"""Rendering: success bodies, and the one place where domain errors become Alibaba error bodies."""

from __future__ import annotations

import json
import re
from typing import Any
from xml.sax.saxutils import escape

from starlette.responses import Response

from app.errors import ApiError

HOST_ID = "cloudauth.aliyuncs.com"  # when the Host header names nothing usable
# Alibaba's error bodies name the endpoint called (``ecs.ap-southeast-3.aliyuncs.com``): ours echo the
# Host header, but only a plain name or address with an optional port, never arbitrary client bytes.
HOST_NAME = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
# The gateway's own content types. The Tea SDKs read an error body as XML only when the content type
# is exactly text/xml;charset=utf-8, and as JSON otherwise.
JSON_TYPE = "application/json;charset=utf-8"
XML_TYPE = "text/xml;charset=utf-8"


def _xml_elements(value: Any, indent: str) -> str:
    if isinstance(value, dict):
        return "".join(
            f"{indent}<{key}>\n{_xml_elements(child, indent + '    ')}{indent}</{key}>\n"
            if isinstance(child, dict)
            else f"{indent}<{key}>{_xml_scalar(child)}</{key}>\n"
            for key, child in value.items()
        )
    return f"{indent}{_xml_scalar(value)}\n"


def _xml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def to_xml(root: str, body: dict[str, Any]) -> str:
    return f"<?xml version='1.0' encoding='UTF-8'?>\n<{root}>\n{_xml_elements(body, '    ')}</{root}>"


def render(
    body: dict[str, Any], *, status: int, xml_root: str | None, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    all_headers = {"x-acs-request-id": request_id, **(headers or {})}
    if xml_root is not None:
        return Response(to_xml(xml_root, body), status_code=status, media_type=XML_TYPE, headers=all_headers)
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status_code=status, media_type=JSON_TYPE, headers=all_headers)


# Actions whose reply has its fields beside RequestId, without CompareFaces' Code/Data/Success envelope.
BARE_ACTIONS = frozenset({"DescribeOssUploadToken"})


def success_response(action: str, data: dict[str, Any], *, request_id: str, xml: bool) -> Response:
    body = {"RequestId": request_id, "Code": "1", "Data": data, "Success": True}
    if action in BARE_ACTIONS:
        body = {"RequestId": request_id, **data}
    return render(body, status=200, xml_root=f"{action}Response" if xml else None, request_id=request_id)


def host_id(host_header: str) -> str:
    """The HostId of an error body: the host the request was sent to."""
    host = host_header.strip()
    return host if HOST_NAME.fullmatch(host) else HOST_ID


def error_response(error: ApiError, *, request_id: str, xml: bool, host: str = HOST_ID) -> Response:
    body = {
        "RequestId": request_id,
        "HostId": host,
        "Code": error.code,
        "Message": error.message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={error.code}&product=Cloudauth",
    }
    return render(
        body, status=error.status, xml_root="Error" if xml else None, request_id=request_id, headers=error.headers
    )
