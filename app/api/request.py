"""An RPC request as the gateway sees it: raw parts kept for signatures, parameters merged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.requests import Request

from app.errors import ImageValuePatternError

MAX_FORM_FIELDS = 1000


@dataclass
class RpcRequest:
    method: str
    path: str
    raw_query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    query_params: list[tuple[str, str]]
    body_params: list[tuple[str, str]]
    params: dict[str, str] = field(default_factory=dict)  # query, then body (body wins)

    @property
    def wants_xml(self) -> bool:
        return self.params.get("Format", "").lower() == "xml"

    @property
    def action(self) -> str:
        return self.headers.get("x-acs-action") or self.params.get("Action", "")

    @property
    def version(self) -> str:
        return self.headers.get("x-acs-version") or self.params.get("Version", "")


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``a=1&b=&c`` -> pairs; ``+`` and ``%20`` are spaces; blank values kept."""
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:  # more fields than MAX_FORM_FIELDS
        raise ImageValuePatternError() from exc


def format_from_query(raw_query: str) -> str:
    """The Format parameter, cheaply, for errors raised before the body is read. Never raises:
    a query with too many fields is refused later, in :func:`parse_pairs`, and answered in JSON."""
    try:
        pairs = parse_qsl(raw_query, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return ""
    for key, value in pairs:
        if key == "Format":
            return value
    return ""


def build_rpc_request(request: Request, body: bytes) -> RpcRequest:
    raw_query = request.url.query
    query_params = parse_pairs(raw_query)
    content_type = request.headers.get("content-type", "")
    body_params: list[tuple[str, str]] = []
    if body and ("x-www-form-urlencoded" in content_type or not content_type):
        body_params = parse_pairs(body.decode("utf-8", errors="replace"))
    params = dict(query_params)
    params.update(body_params)
    return RpcRequest(
        method=request.method,
        path=request.url.path,
        raw_query=raw_query,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        query_params=query_params,
        body_params=body_params,
        params=params,
    )
