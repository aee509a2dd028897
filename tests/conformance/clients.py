"""The official clients, each behind one small driver with the same shape.

A driver builds the SDK's own client pointed at the server, calls ``CompareFaces`` the way the SDK's
documentation does, and reports what the caller sees: the SDK's response model on success, the SDK's
own exception on failure. Only the nonce and timestamp generators may be pinned (inside this test
process or the Node driver process) to replay a nonce or send a stale timestamp; the server is real.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_MODULES = (
    "@alicloud/cloudauth20190307",
    "@alicloud/pop-core",
    "@alicloud/openapi-core",
    "@alicloud/openapi-client",
    "pop-core-1.5",
)


@dataclass(frozen=True)
class Credentials:
    key_id: str
    secret: str
    token: str = ""  # STS security token

    def with_secret(self, secret: str) -> Credentials:
        return Credentials(self.key_id, secret, self.token)


@dataclass
class Outcome:
    ok: bool
    status: int
    code: str
    score: float | None = None
    thresholds: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    model: str = ""  # success: the SDK's response model that parsed the body
    error_type: str = ""  # failure: the SDK's own exception (or error body) type
    message: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"ok {self.status} {self.model} score={self.score}"
        return f"{self.error_type} {self.status} {self.code}: {self.message[:200]}"


class Driver(Protocol):
    name: str
    sts: bool  # called with STS credentials in the conformance tests
    error_types: frozenset[str]  # the SDK's own exception types (by class name)

    def call(
        self, creds: Credentials, params: dict[str, str], *, nonce: str | None = None, timestamp: str | None = None
    ) -> Outcome: ...

    def own_error_type(self, outcome: Outcome) -> bool:
        """The failure surfaced as the SDK's own exception type."""
        ...


@contextmanager
def pinned(owner: Any, name: str, value: str | None) -> Iterator[None]:
    """Make ``owner.name()`` (a static generator of the SDK) return ``value`` for a while."""
    if value is None:
        yield
        return
    original = owner.__dict__[name]

    def fixed(*args: object, **kwargs: object) -> str:
        return value

    setattr(owner, name, fixed if isinstance(owner, ModuleType) else staticmethod(fixed))
    try:
        yield
    finally:
        setattr(owner, name, original)


def _thresholds(text: str | None) -> dict[str, str]:
    parsed = json.loads(text or "{}")
    assert isinstance(parsed, dict)
    return parsed


# --- Python: alibabacloud-cloudauth20190307 (Tea; V3 by default, RPC v1 with signature_algorithm='v2')


class PythonTea:
    error_types = frozenset({"ClientException", "ServerException", "ThrottlingException"})

    def __init__(
        self, endpoint: str, *, algorithm: str | None = None, sts: bool = False, ca_file: Path | None = None
    ) -> None:
        self.endpoint = endpoint  # "127.0.0.1:PORT"
        self.algorithm = algorithm
        self.sts = sts
        self.ca_file = ca_file  # set: HTTPS, trusting this CA
        self.name = f"py-tea-{algorithm or 'v3'}{'-sts' if sts else ''}"

    def own_error_type(self, outcome: Outcome) -> bool:
        return outcome.error_type in self.error_types

    def client(self, creds: Credentials) -> Any:
        from alibabacloud_cloudauth20190307.client import Client
        from alibabacloud_tea_openapi import models as open_api_models

        config = open_api_models.Config(
            access_key_id=creds.key_id,
            access_key_secret=creds.secret,
            security_token=creds.token or None,
            endpoint=self.endpoint,
            protocol="https" if self.ca_file else "http",
            ca=str(self.ca_file) if self.ca_file else None,
        )
        if self.algorithm:
            config.signature_algorithm = self.algorithm
        return Client(config)

    def call(
        self, creds: Credentials, params: dict[str, str], *, nonce: str | None = None, timestamp: str | None = None
    ) -> Outcome:
        from alibabacloud_cloudauth20190307 import models
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
        from alibabacloud_tea_openapi.utils import Utils

        request = models.CompareFacesRequest(
            source_image_type=params.get("SourceImageType"),
            source_image_value=params.get("SourceImageValue"),
            target_image_type=params.get("TargetImageType"),
            target_image_value=params.get("TargetImageValue"),
        )
        client = self.client(creds)
        try:
            with pinned(Utils, "get_nonce", nonce), pinned(Utils, "get_timestamp", timestamp):
                response = client.compare_faces(request)
        except AlibabaCloudException as error:
            return Outcome(
                ok=False,
                status=int(error.status_code or 0),
                code=str(error.code),
                error_type=type(error).__name__,
                message=str(error.message),
                request_id=str(error.request_id or ""),
            )
        assert isinstance(response, models.CompareFacesResponse)
        body = response.body
        assert isinstance(body, models.CompareFacesResponseBody)
        assert isinstance(body.data, models.CompareFacesResponseBodyData)
        assert body.success is True
        return Outcome(
            ok=True,
            status=int(response.status_code),
            code=str(body.code),
            score=body.data.similarity_score,
            thresholds=_thresholds(body.data.confidence_thresholds),
            request_id=str(body.request_id),
            model=type(response).__name__,
        )


# --- Python: aliyun-python-sdk-core + aliyun-python-sdk-cloudauth (RPC v1), JSON or XML


class PythonCore:
    error_types = frozenset({"ServerException"})

    def __init__(self, endpoint: str, *, xml: bool = False, sts: bool = False, ca_file: Path | None = None) -> None:
        host, _, port = endpoint.partition(":")
        self.host, self.port = host, int(port)
        self.xml = xml
        self.sts = sts
        self.ca_file = ca_file  # set: HTTPS, trusting this CA
        self.name = f"py-core-{'xml' if xml else 'json'}{'-sts' if sts else ''}"
        if xml:
            self.error_types = frozenset({"Error"})  # do_action hands back the XML error body as it came

    def own_error_type(self, outcome: Outcome) -> bool:
        return outcome.error_type in self.error_types

    def client(self, creds: Credentials) -> Any:
        from aliyunsdkcore.auth.credentials import StsTokenCredential
        from aliyunsdkcore.client import AcsClient

        verify = str(self.ca_file) if self.ca_file else None
        if creds.token:
            credential = StsTokenCredential(creds.key_id, creds.secret, creds.token)
            return AcsClient(region_id="cn-hangzhou", credential=credential, port=self.port, verify=verify)
        return AcsClient(creds.key_id, creds.secret, "cn-hangzhou", port=self.port, verify=verify)

    def call(
        self, creds: Credentials, params: dict[str, str], *, nonce: str | None = None, timestamp: str | None = None
    ) -> Outcome:
        from aliyunsdkcloudauth.request.v20190307.CompareFacesRequest import CompareFacesRequest
        from aliyunsdkcore.acs_exception.exceptions import ServerException
        from aliyunsdkcore.utils import parameter_helper

        request = CompareFacesRequest()
        request.set_endpoint(self.host)
        request.set_protocol_type("https" if self.ca_file else "http")  # after the constructor, which forces https
        for name, value in params.items():
            getattr(request, f"set_{name}")(value)
        client = self.client(creds)
        with pinned(parameter_helper, "get_uuid", nonce), pinned(parameter_helper, "get_iso_8061_date", timestamp):
            if self.xml:
                request.set_accept_format("XML")
                with warnings.catch_warnings():  # get_response: deprecated, but the one call that keeps XML
                    warnings.simplefilter("ignore", DeprecationWarning)
                    status, _headers, body = client.get_response(request)
                return self._parse_xml(int(status), body)
            try:
                body = client.do_action_with_exception(request)
            except ServerException as error:
                return Outcome(
                    ok=False,
                    status=int(error.get_http_status()),
                    code=error.get_error_code(),
                    error_type=type(error).__name__,
                    message=error.get_error_msg(),
                    request_id=str(error.get_request_id() or ""),
                )
        parsed = json.loads(body)
        assert parsed["Success"] is True
        return Outcome(
            ok=True,
            status=200,
            code=parsed["Code"],
            score=parsed["Data"]["SimilarityScore"],
            thresholds=_thresholds(parsed["Data"]["ConfidenceThresholds"]),
            request_id=parsed["RequestId"],
            model="json",
        )

    @staticmethod
    def _parse_xml(status: int, body: bytes) -> Outcome:
        root = ET.fromstring(body)
        if root.tag == "Error":
            return Outcome(
                ok=False,
                status=status,
                code=root.findtext("Code") or "",
                error_type=root.tag,
                message=root.findtext("Message") or "",
                request_id=root.findtext("RequestId") or "",
            )
        assert root.tag == "CompareFacesResponse", root.tag
        assert root.findtext("Success") == "true"
        return Outcome(
            ok=True,
            status=status,
            code=root.findtext("Code") or "",
            score=float(root.findtext("Data/SimilarityScore") or "nan"),
            thresholds=_thresholds(root.findtext("Data/ConfidenceThresholds")),
            request_id=root.findtext("RequestId") or "",
            model="xml",
        )


# --- Node: @alicloud/cloudauth20190307 (Tea) and @alicloud/pop-core, through node/driver.js


def node_unavailable() -> str | None:
    """Why the Node clients cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    missing = [m for m in NODE_MODULES if not (NODE_DIR / "node_modules" / m / "package.json").is_file()]
    if missing:
        return f"Node SDKs not installed ({', '.join(missing)}): run scripts/install-node-sdks.sh"
    return None


class NodeProcess:
    """One long-lived ``node driver.js`` (or another line-JSON driver: ``argv``); calls go one JSON line
    at a time."""

    def __init__(
        self, timeout_s: float = 90.0, argv: list[str] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.timeout_s = timeout_s
        self.process = subprocess.Popen(
            argv or ["node", str(NODE_DIR / "driver.js")],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NODE_NO_WARNINGS": "1", "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", **(env or {})},
        )

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(self.timeout_s):
                raise TimeoutError("the Node driver did not answer")
        line = self.process.stdout.readline()
        if not line:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"the Node driver exited: {stderr[-2000:]}")
        answer = json.loads(line)
        assert isinstance(answer, dict)
        return answer

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()


class NodeClient:
    def __init__(
        self,
        node: NodeProcess,
        endpoint: str,
        *,
        client: str,
        algorithm: str | None = None,
        sts: bool = False,
        protocol: str = "http",  # https: ``node`` was started with NODE_EXTRA_CA_CERTS
    ) -> None:
        self.node = node
        self.protocol = protocol
        self.endpoint = endpoint
        self.client = client  # "tea" or "popcore"
        self.algorithm = algorithm
        self.sts = sts
        variant = "" if client == "popcore" else f"-{algorithm or 'v3'}"
        self.name = f"node-{client}{variant}{'-sts' if sts else ''}"
        self.error_types = (
            frozenset({"ClientError", "ServerError", "ThrottlingError"})
            if client == "tea"
            else frozenset()  # pop-core names each error after its code ("<Code>Error")
        )

    def call(
        self, creds: Credentials, params: dict[str, str], *, nonce: str | None = None, timestamp: str | None = None
    ) -> Outcome:
        answer = self.node.call(
            {
                "client": self.client,
                "endpoint": self.endpoint,
                "protocol": self.protocol,
                "keyId": creds.key_id,
                "secret": creds.secret,
                "token": creds.token or None,
                "signatureAlgorithm": self.algorithm,
                "nonce": nonce,
                "timestamp": timestamp,
                "params": params,
            }
        )
        if answer.get("code") == "DriverError":
            raise RuntimeError(answer.get("message"))
        if answer["ok"]:
            assert answer["success"] is True
            return Outcome(
                ok=True,
                status=int(answer["status"]),
                code=str(answer["code"]),
                score=answer["score"],
                thresholds=_thresholds(answer["thresholds"]),
                request_id=answer["requestId"],
                model=answer["model"],
            )
        return Outcome(
            ok=False,
            status=int(answer["status"]),
            code=str(answer["code"]),
            error_type=answer["errorType"],
            message=answer["message"],
            request_id=answer.get("requestId") or "",
        )

    def own_error_type(self, outcome: Outcome) -> bool:
        if self.client == "popcore":
            return outcome.error_type == f"{outcome.code}Error"
        return outcome.error_type in self.error_types
