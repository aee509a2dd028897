"""An RPC request as the gateway sees it: raw parts kept for signatures, parameters merged.

The one place that decides how to answer (``wants_xml``) and which action and version were asked
for. The gateway parses the head first (no body) and answers from the fullest parse it has.
"""

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
    duplicate_headers: frozenset[str] = frozenset()  # lower-case names sent more than once
    scheme: str = "http"  # "https" over TLS (ours, or a trusted proxy's X-Forwarded-Proto)

    @property
    def wants_xml(self) -> bool:
        """``Format=XML`` (any case) in the parameters, the body's winning over the query's."""
        return self.params.get("Format", "").lower() == "xml"

    @property
    def signed_by_headers(self) -> bool:
        """V3 signs the ``x-acs-*`` headers; RPC v1 signs the parameters and no header."""
        return self.headers.get("authorization", "").lstrip(" \t").startswith("ACS3-")

    def _signed_choice(self, header: str, param: str) -> str:
        from_header = self.headers.get(header, "").strip(" \t")
        from_params = self.params.get(param, "")
        if self.signed_by_headers:
            return from_header or from_params
        return from_params or from_header

    @property
    def action(self) -> str:
        """The signed action: the ``x-acs-action`` header for V3, the ``Action`` parameter otherwise."""
        return self._signed_choice("x-acs-action", "Action")

    @property
    def version(self) -> str:
        return self._signed_choice("x-acs-version", "Version")


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``a=1&b=&c`` -> pairs; ``+`` and ``%20`` are spaces; blank values kept."""
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:  # more fields than MAX_FORM_FIELDS
        raise ImageValuePatternError() from exc


def build_rpc_request(request: Request, body: bytes) -> RpcRequest:
    raw_query = request.url.query
    query_params = parse_pairs(raw_query)
    content_type = request.headers.get("content-type", "")
    body_params: list[tuple[str, str]] = []
    if body and ("x-www-form-urlencoded" in content_type or not content_type):
        body_params = parse_pairs(body.decode("utf-8", errors="replace"))
    params = dict(query_params)
    params.update(body_params)
    seen: set[str] = set()
    duplicates: set[str] = set()
    for raw_name, _ in request.headers.raw:
        name = raw_name.decode("latin-1").lower()
        (duplicates if name in seen else seen).add(name)
    return RpcRequest(
        method=request.method,
        path=request.url.path,
        raw_query=raw_query,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        query_params=query_params,
        body_params=body_params,
        params=params,
        duplicate_headers=frozenset(duplicates),
        scheme=request.url.scheme,
    )
