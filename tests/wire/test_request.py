"""RpcRequest's rules, without a server: which action and version a request names, in which format it
is answered, where its parameters come from. The gateway answers from the head's parse (no body) until
the body has arrived, so each rule holds for a head as for a whole request."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.errors import ImageValuePatternError
from app.wire.request import MAX_FORM_FIELDS, RpcRequest, build_rpc_request

FORM = "application/x-www-form-urlencoded"
V3_AUTHORIZATION = "ACS3-HMAC-SHA256 Credential=LTAI5tWIRE,SignedHeaders=host,Signature=00"


def parse(query: str = "", body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> RpcRequest:
    raw_headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers or []]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": query.encode(),
        "headers": raw_headers,
        "server": ("127.0.0.1", 80),
        "scheme": "http",
    }
    return build_rpc_request(Request(scope), body)


@pytest.mark.parametrize("value", ["XML", "xml", "Xml"])
def test_format_xml_in_any_case(value: str) -> None:
    assert parse(f"Format={value}").wants_xml


@pytest.mark.parametrize("query", ["", "Format=JSON", "Format=", "Format=xmlx", "format=XML"])
def test_anything_else_is_json(query: str) -> None:
    assert not parse(query).wants_xml


def test_the_body_format_wins_over_the_query() -> None:
    assert not parse("Format=XML", b"Format=JSON", [("content-type", FORM)]).wants_xml
    assert parse("Format=JSON", b"Format=XML", [("content-type", FORM)]).wants_xml


def test_a_repeated_format_the_last_wins() -> None:
    assert not parse("Format=XML&Format=JSON").wants_xml
    assert parse("Format=JSON&Format=XML").wants_xml


def test_a_head_carries_the_query_format_and_action() -> None:
    head = parse("Format=XML&Action=CompareFaces&Version=2019-03-07")
    assert head.body == b"" and head.body_params == []
    assert (head.wants_xml, head.action, head.version) == (True, "CompareFaces", "2019-03-07")


def test_rpc_v1_the_action_parameter_wins_over_the_header() -> None:
    both = parse("Action=CompareFaces&Version=2019-03-07", headers=[("x-acs-action", "Other"), ("x-acs-version", "1")])
    assert (both.action, both.version) == ("CompareFaces", "2019-03-07")
    only_header = parse(headers=[("x-acs-action", " CompareFaces\t"), ("x-acs-version", "2019-03-07")])
    assert (only_header.action, only_header.version) == ("CompareFaces", "2019-03-07")


def test_v3_the_header_wins_over_the_parameter() -> None:
    headers = [("authorization", V3_AUTHORIZATION), ("x-acs-action", " CompareFaces "), ("x-acs-version", "2019-03-07")]
    both = parse("Action=Other&Version=1", headers=headers)
    assert both.signed_by_headers
    assert (both.action, both.version) == ("CompareFaces", "2019-03-07")
    only_params = parse("Action=CompareFaces&Version=2019-03-07", headers=[("authorization", V3_AUTHORIZATION)])
    assert (only_params.action, only_params.version) == ("CompareFaces", "2019-03-07")


def test_v3_is_told_by_the_authorization_scheme() -> None:
    assert parse(headers=[("authorization", " \t" + V3_AUTHORIZATION)]).signed_by_headers
    assert not parse(headers=[("authorization", "Bearer x")]).signed_by_headers
    assert not parse("Signature=abc").signed_by_headers


def test_no_action_anywhere_is_empty() -> None:
    assert (parse().action, parse().version) == ("", "")


def test_parameters_merge_query_then_body_and_the_body_wins() -> None:
    rpc = parse("A=query&B=query", b"B=body&C=body", [("content-type", FORM)])
    assert rpc.params == {"A": "query", "B": "body", "C": "body"}
    assert rpc.query_params == [("A", "query"), ("B", "query")]
    assert rpc.body_params == [("B", "body"), ("C", "body")]


@pytest.mark.parametrize("content_type", [None, FORM, FORM + "; charset=utf-8"])
def test_a_form_body_or_one_without_a_type_is_parsed(content_type: str | None) -> None:
    headers = [("content-type", content_type)] if content_type else []
    assert parse(body=b"Format=XML", headers=headers).wants_xml


def test_a_body_of_another_type_is_not_parameters() -> None:
    rpc = parse("Action=CompareFaces", b'{"Action": "Other"}', [("content-type", "application/json")])
    assert rpc.body_params == [] and rpc.action == "CompareFaces"


def test_spaces_and_blank_values() -> None:
    assert parse("A=a+b%20c&B=&C").params == {"A": "a b c", "B": "", "C": ""}


def test_too_many_fields_are_refused() -> None:
    parse("&".join(f"f{i}=x" for i in range(MAX_FORM_FIELDS)))
    with pytest.raises(ImageValuePatternError):
        parse("&".join(f"f{i}=x" for i in range(MAX_FORM_FIELDS + 1)))


def test_headers_sent_twice_are_noted() -> None:
    rpc = parse(headers=[("X-Acs-Action", "A"), ("x-acs-action", "B"), ("host", "h")])
    assert rpc.duplicate_headers == frozenset({"x-acs-action"})
