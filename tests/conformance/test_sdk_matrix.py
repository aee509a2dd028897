"""The matrix users really run: each official client, version, call style and signature, through a
loopback relay that forwards bytes in 1,400-byte pieces (as a network path does), against the real
server with signatures required.

Every combination makes four calls and checks what its caller sees:

- success: two photos of one person, parsed by the SDK (its response model where it has one);
- signature error: a wrong secret, as the SDK's own error with the gateway's code;
- input error: ``TargetImageType=Selfie`` -> ``InvalidParam.ImageTypeInvalid`` (400);
- XML error: the same with ``Format=XML``, where the client lets a caller ask for it. What the caller
  gets then depends on the client, exactly as against Alibaba's gateway: the Tea SDKs read the XML
  error under V3 signatures (content type ``text/xml;charset=utf-8``) and JSON only under v2; the
  core SDK asks for JSON in ``do_action_with_exception`` whatever was set, so XML is read from
  ``get_response``'s raw body; pop-core reads JSON only.

Pinned versions: ``sdk_pins.py`` (Python, one virtualenv per set, ``scripts/install-python-sdks.py``)
and ``node/package.json`` (``scripts/install-node-sdks.sh``). A set that is not installed skips with
the reason. ``CONFORMANCE_MATRIX_REPORT=path.md`` writes the matrix as a table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from app.tools.tls import init
from tests.conformance import sdk_pins
from tests.conformance.clients import NodeProcess, node_unavailable
from tests.conformance.conftest import AK, STS, Credentials
from tests.conformance.relay import Relay, relay
from tests.helpers.images import LFW, astronaut_bgr, astronaut_face_crop, b64, encode, lfw_photo
from tests.helpers.server import run_server

PYDRIVER = Path(__file__).resolve().parent / "pydriver.py"
FACE = b64(encode(astronaut_face_crop()))
INPUT_ERROR = ("InvalidParam.ImageTypeInvalid", 400)
THRESHOLD_KEYS = {"0.0001", "0.001", "0.01"}

# What the XML-error call shows the caller.
XML_CODE = "the SDK's own error with the code"  # the Tea SDKs
XML_RAW = "the <Error> body, read by the caller"  # the core SDK: get_response hands back the XML
XML_JSON_ONLY = "the client reads JSON only"  # pop-core, @alicloud/openapi-client
XML_NONE = "no way to ask for XML"


@dataclass(frozen=True)
class Combo:
    name: str
    runtime: str  # a Python SDK set of sdk_pins, or "node"
    call: dict[str, Any]  # the fixed part of each driver call
    signature: str  # as the caller configures it
    sts: bool = False
    signature_code: str = "SignatureDoesNotMatch"
    xml: str = XML_CODE
    notes: str = ""


V3, SM3, V2, V1 = "ACS3-HMAC-SHA256", "ACS3-HMAC-SM3", "RPC v1 HMAC-SHA1 (v2)", "RPC v1 HMAC-SHA1"


def tea(name: str, runtime: str, signature: str, **call: Any) -> Combo:
    algorithm = {V3: None, SM3: SM3, V2: "v2", V1: None}[signature]
    xml = XML_CODE if signature in (V3, SM3) else XML_NONE if runtime == "tea1" else XML_JSON_ONLY
    return Combo(name, runtime, {"style": "tea", "algorithm": algorithm, **call}, signature, sts="sts" in name, xml=xml)


def call_api(name: str, runtime: str, signature: str, **call: Any) -> Combo:
    algorithm = {V3: None, SM3: SM3, V2: "v2"}[signature]
    xml = XML_CODE if signature in (V3, SM3) else XML_JSON_ONLY
    return Combo(name, runtime, {"style": "callapi", "algorithm": algorithm, **call}, signature, xml=xml)


def core(runtime: str, suffix: str, call: dict[str, Any]) -> Combo:
    # The current core SDK renames a mismatch whose string to sign equals its own (only for its typed
    # requests: a CommonRequest keeps that string on an inner request the check does not look at).
    renamed = runtime == "core-new" and call["style"] == "core"
    return Combo(
        f"py-{runtime}{suffix}",
        runtime,
        call,
        V1,
        sts="sts" in suffix,
        signature_code="InvalidAccessKeySecret" if renamed else "SignatureDoesNotMatch",
        xml=XML_RAW,
    )


def node(name: str, signature: str, **call: Any) -> Combo:
    algorithm = {V3: None, SM3: SM3, V2: "v2", V1: None}[signature]
    xml = XML_JSON_ONLY if call["client"].startswith("popcore") or signature == V2 else XML_CODE
    if algorithm:
        call["signatureAlgorithm"] = algorithm
    return Combo(name, "node", call, signature, sts="sts" in name, xml=xml)


COMBOS = [
    # Python Tea, newest major (darabonba tea-openapi)
    tea("py-tea3", "tea3", V3),
    tea("py-tea3-sm3", "tea3", SM3),
    tea("py-tea3-v2", "tea3", V2),
    tea("py-tea3-sts", "tea3", V3),
    tea("py-tea3-provider-ak", "tea3", V3, credentials="provider-ak"),
    tea("py-tea3-provider-sts", "tea3", V3, credentials="provider-sts"),
    tea("py-tea3-env-ak", "tea3", V3, credentials="env"),
    tea("py-tea3-env-sts", "tea3", V3, credentials="env"),
    call_api("py-tea3-call_api-body", "tea3", V3),
    call_api("py-tea3-call_api-query", "tea3", V3, placement="query"),
    call_api("py-tea3-call_api-query-v2", "tea3", V2, placement="query"),
    call_api("py-tea3-call_api-body-sm3", "tea3", SM3),
    # Python Tea, an older major (Tea-based tea-openapi 0.3)
    tea("py-tea2", "tea2", V3),
    tea("py-tea2-v2", "tea2", V2),
    tea("py-tea2-sts", "tea2", V3),
    call_api("py-tea2-call_api-query", "tea2", V3, placement="query"),
    call_api("py-tea2-call_api-body-v2", "tea2", V2),
    # Python Tea 1.x (tea-rpc)
    tea("py-tea1", "tea1", V1),
    tea("py-tea1-sts", "tea1", V1),
    # Python core SDK: typed request and CommonRequest (body or URL parameters)
    *(
        core(runtime, suffix, call)
        for runtime in ("core-new", "core-old")
        for suffix, call in (
            ("", {"style": "core"}),
            ("-sts", {"style": "core"}),
            ("-CommonRequest-body", {"style": "common"}),
            ("-CommonRequest-query", {"style": "common", "placement": "query"}),
        )
    ),
    # Node (pop-core 1.5 has no STS support: it never sends a SecurityToken)
    node("node-tea", V3, client="tea"),
    node("node-tea-sm3", SM3, client="tea"),
    node("node-tea-v2", V2, client="tea"),
    node("node-tea-sts", V3, client="tea"),
    node("node-openapi-client-body", V3, client="openapi-client"),
    node("node-openapi-client-query", V3, client="openapi-client", placement="query"),
    node("node-openapi-client-query-v2", V2, client="openapi-client", placement="query"),
    node("node-pop-core-1.8", V1, client="popcore"),
    node("node-pop-core-1.8-sts", V1, client="popcore"),
    node("node-pop-core-1.5-url", V1, client="popcore-1.5"),
]


def photo_pair() -> tuple[str, str, float]:
    if LFW.is_dir():
        return b64(lfw_photo("Tony_Blair", 1)), b64(lfw_photo("Tony_Blair", 2)), 80.0
    return b64(encode(astronaut_bgr())), FACE, 90.0


def params(target_type: str = "FacePic", source: str = FACE, target: str = FACE) -> dict[str, str]:
    return {
        "SourceImageType": "FacePic",
        "SourceImageValue": source,
        "TargetImageType": target_type,
        "TargetImageValue": target,
    }


@dataclass
class Row:
    combo: Combo
    versions: str = ""
    results: dict[str, str] = field(default_factory=dict)


REPORT: dict[str, Row] = {}


@pytest.fixture(scope="module")
def relayed_endpoint(signed_server: str) -> Iterator[Relay]:
    with relay(signed_server) as path:
        yield path


Drivers = Callable[[str, Credentials | None], NodeProcess]


@contextmanager
def driver_pool(base_env: dict[str, str]) -> Iterator[Drivers]:
    """``drivers(runtime, env_credentials)``: the long-lived driver process of a Python SDK set or of
    Node (skips if absent), started with ``base_env``; with credentials, one started with them in
    ALIBABA_CLOUD_* variables too (the credentials library reads them when it is imported)."""
    started: dict[tuple[str, Credentials | None], NodeProcess] = {}

    def get(runtime: str, env_credentials: Credentials | None = None) -> NodeProcess:
        key = (runtime, env_credentials)
        if key not in started:
            env = dict(base_env)
            if env_credentials is not None:
                env |= {
                    "ALIBABA_CLOUD_ACCESS_KEY_ID": env_credentials.key_id,
                    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": env_credentials.secret,
                    "ALIBABA_CLOUD_SECURITY_TOKEN": env_credentials.token,
                }
            if runtime == "node":
                reason = node_unavailable()
                if reason:
                    pytest.skip(reason)
                started[key] = NodeProcess(env=env)
            else:
                if not sdk_pins.installed(runtime):
                    pytest.skip(f"Python SDK set {runtime} not installed: run scripts/install-python-sdks.py")
                started[key] = NodeProcess(argv=[str(sdk_pins.venv_python(runtime)), str(PYDRIVER)], env=env)
        return started[key]

    try:
        yield get
    finally:
        for process in started.values():
            process.close()


@pytest.fixture(scope="module")
def drivers() -> Iterator[Drivers]:
    with driver_pool({}) as get:
        yield get


@pytest.fixture(scope="module", autouse=True)
def matrix_report() -> Iterator[None]:
    yield
    target = os.environ.get("CONFORMANCE_MATRIX_REPORT")
    if target and REPORT:
        lines = [
            "| client | versions | signature | success | signature error | input error | XML error | over 8 MB "
            "| HTTPS |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in REPORT.values():
            checks = ("success", "signature", "input", "xml", "over", "https")
            cells = [row.results.get(check, "-") for check in checks]
            lines.append(
                f"| {row.combo.name} | {row.versions} | {row.combo.signature}"
                f"{' + STS' if row.combo.sts else ''} | " + " | ".join(cells) + " |"
            )
        Path(target).write_text("\n".join(lines) + "\n")


def run(
    drivers: Drivers, combo: Combo, endpoint: str, creds: Credentials, call_params: dict[str, str], **extra: Any
) -> dict[str, Any]:
    driver = drivers(combo.runtime, creds if combo.call.get("credentials") == "env" else None)
    call = {
        **combo.call,
        "endpoint": endpoint,
        "keyId": creds.key_id,
        "secret": creds.secret,
        "token": creds.token or None,
        "params": call_params,
        **extra,
    }
    answer = driver.call(call)
    assert answer.get("code") != "DriverError", answer.get("message")
    return answer


def versions_of(driver: NodeProcess, combo: Combo) -> str:
    found = driver.call({"style": "versions", "client": "versions"})["versions"]
    keep = [n for n in found if n != "alibabacloud-credentials" or "provider" in combo.name or "env" in combo.name]
    if combo.runtime == "node":
        wanted = {
            "tea": ["@alicloud/cloudauth20190307", "@alicloud/openapi-core"],
            "openapi-client": ["@alicloud/openapi-client"],
            "popcore": ["@alicloud/pop-core"],
            "popcore-1.5": ["pop-core-1.5"],
        }[combo.call["client"]]
        keep = [n for n in wanted if n in found]
    return ", ".join(f"{n.removeprefix('@alicloud/')} {found[n]}" for n in keep)


@pytest.mark.parametrize("combo", COMBOS, ids=[c.name for c in COMBOS])
def test_matrix(combo: Combo, drivers: Drivers, relayed_endpoint: Relay) -> None:
    driver = drivers(combo.runtime, None)
    endpoint = relayed_endpoint.endpoint
    creds = STS if combo.sts else AK
    row = REPORT.setdefault(combo.name, Row(combo, versions_of(driver, combo)))
    failures = []

    source, target, at_least = photo_pair()
    ok = run(drivers, combo, endpoint, creds, params(source=source, target=target))
    if (
        ok["ok"]
        and ok["code"] == "1"
        and at_least <= ok["score"] <= 100
        and set(json.loads(ok["thresholds"])) == THRESHOLD_KEYS
        and len(ok["requestId"]) == 36
    ):
        row.results["success"] = f"ok ({ok['model']}, score {ok['score']:.1f})"
    else:
        row.results["success"] = "FAILED"
        failures.append(f"success: {ok}")

    wrong = run(drivers, combo, endpoint, creds.with_secret(creds.secret[::-1]), params())
    if not wrong["ok"] and (wrong["code"], wrong["status"]) == (combo.signature_code, 400):
        row.results["signature"] = f"{wrong['errorType']} {wrong['code']}"
    else:
        row.results["signature"] = "FAILED"
        failures.append(f"signature: {wrong}")

    bad = run(drivers, combo, endpoint, creds, params(target_type="Selfie"))
    if not bad["ok"] and (bad["code"], bad["status"]) == INPUT_ERROR and bad["requestId"]:
        row.results["input"] = f"{bad['errorType']} {bad['code']}"
    else:
        row.results["input"] = "FAILED"
        failures.append(f"input: {bad}")

    if combo.xml == XML_NONE:
        row.results["xml"] = "n/a (no way to ask for XML)"
    else:
        xml = run(drivers, combo, endpoint, creds, params(target_type="Selfie"), format="XML")
        if combo.xml == XML_CODE:
            good = not xml["ok"] and (xml["code"], xml["status"]) == INPUT_ERROR and xml["requestId"]
            shown = f"{xml['errorType']} {xml['code']}"
        elif combo.xml == XML_RAW:
            good = not xml["ok"] and xml["errorType"] == "Error" and (xml["code"], xml["status"]) == INPUT_ERROR
            shown = f"<Error> body {xml['code']} (get_response)"
        else:
            good = not xml["ok"] and not xml["code"]
            shown = f"{xml['errorType']} (reads JSON only)"
        row.results["xml"] = shown if good else "FAILED"
        if not good:
            failures.append(f"xml: {xml}")

    assert not failures, f"{combo.name}:\n" + "\n".join(failures)


# One combination per client family, body and URL placements: a request over 8 MB gets the contract's
# error, not a connection reset (a body is read and discarded past the limit; a head past the limit
# is answered before a half-close).
OVER_LIMIT = [
    "py-tea3",
    "py-tea3-v2",
    "py-tea3-call_api-query",
    "py-tea2",
    "py-tea1",
    "py-core-new",
    "py-core-old-CommonRequest-query",
    "node-tea",
    "node-openapi-client-body",
    "node-pop-core-1.8",
    "node-pop-core-1.5-url",
]


@pytest.mark.parametrize("name", OVER_LIMIT)
def test_request_over_8_mb(name: str, drivers: Drivers, relayed_endpoint: Relay) -> None:
    combo = next(c for c in COMBOS if c.name == name)
    creds = STS if combo.sts else AK
    too_big = "base64://" + "A" * (8 * 1024 * 1024 + 512 * 1024)
    answer = run(drivers, combo, relayed_endpoint.endpoint, creds, params(source=too_big))
    row = REPORT.setdefault(combo.name, Row(combo, versions_of(drivers(combo.runtime, None), combo)))
    good = not answer["ok"] and (answer["code"], answer["status"]) == ("InvalidParam.ImageValuePatternError", 400)
    row.results["over"] = f"{answer['errorType']} {answer['code']}" if good else "FAILED"
    assert good, answer


# The HTTPS column: each combination's successful comparison over TLS (the server's own, with the
# development CA of `comparefaces tls init`), through the relay, trusting the CA the way
# docs/sdks-and-keys.md says: Config(ca=...) for Tea, ALIBABA_CLOUD_CA_BUNDLE for the core SDK,
# NODE_EXTRA_CA_CERTS for Node.
HTTPS_IMPOSSIBLE = {
    "tea1": "Tea 1.x (tea-rpc) hands its transport no CA setting: only certifi's bundle is trusted",
    "core-old": "core SDK 2.11 sends HTTPS to port 443 whatever port is configured",
}


@pytest.fixture(scope="module")
def https_matrix(
    conformance_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, Drivers]]:
    files = init(tmp_path_factory.mktemp("matrix-tls"), ["127.0.0.1"])[0]
    settings = conformance_settings.model_copy(update={"tls_cert_file": files.cert, "tls_key_file": files.key})
    env = {"NODE_EXTRA_CA_CERTS": str(files.ca_cert), "ALIBABA_CLOUD_CA_BUNDLE": str(files.ca_cert)}
    with run_server(settings) as url, relay(url.removeprefix("https://")) as path, driver_pool(env) as get:
        yield path.endpoint, files.ca_cert, get


@pytest.mark.parametrize("combo", COMBOS, ids=[c.name for c in COMBOS])
def test_matrix_over_https(combo: Combo, https_matrix: tuple[str, Path, Drivers]) -> None:
    endpoint, ca, https_drivers = https_matrix
    driver = https_drivers(combo.runtime, None)
    row = REPORT.setdefault(combo.name, Row(combo, versions_of(driver, combo)))
    if combo.runtime in HTTPS_IMPOSSIBLE:
        row.results["https"] = f"n/a ({HTTPS_IMPOSSIBLE[combo.runtime]})"
        pytest.skip(HTTPS_IMPOSSIBLE[combo.runtime])
    source, target, at_least = photo_pair()
    creds = STS if combo.sts else AK
    answer = run(
        https_drivers, combo, endpoint, creds, params(source=source, target=target), protocol="https", ca=str(ca)
    )
    good = answer["ok"] and answer["code"] == "1" and at_least <= answer["score"] <= 100
    row.results["https"] = f"ok ({answer['model']})" if good else "FAILED"
    assert good, f"{answer.get('code')}: {answer.get('message', '')[:400]}"
