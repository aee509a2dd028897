"""The real server on 127.0.0.1 with a keys file, and the official clients pointed at it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.api.factory import start_comparisons
from app.comparison import Comparisons, ComparisonService, EncodedImage
from app.engine.build import load_engine
from app.engine.types import Comparison, ImageType
from app.errors import CompareFacesError
from app.metrics import Metrics
from app.settings import Settings
from tests.conformance.clients import (
    Credentials,
    Driver,
    NodeClient,
    NodeProcess,
    PythonCore,
    PythonTea,
    node_unavailable,
)
from tests.helpers.images import astronaut_face_crop, encode
from tests.helpers.redis import run_redis
from tests.helpers.server import run_server

# The same test key as the captures in tests/fixtures/sdk-wire.
AK = Credentials("LTAI5tFAKEKEYID0000001", "FakeSecret0123456789abcdefABCDEF")
STS = Credentials("STS.NUfakeConformance0001", "StsFakeSecret0123456789abcdef", "CAIS+fakeSTS/token==")
AK_DENIED = Credentials("LTAI5tFAKEDENIED000001", "DeniedSecret0123456789abcdefAB")  # may not call CompareFaces
STS_DENIED = Credentials("STS.NUfakeDenied0001", "StsDeniedSecret0123456789abcd", "CAIS+fakeSTS/denied==")

# Every client variant the suite drives (Node ones skip when Node or the modules are absent).
DRIVERS = [
    "py-tea-v3",
    "py-tea-v2",
    "py-tea-v3-sts",
    "py-tea-v2-sts",
    "py-core-json",
    "py-core-xml",
    "py-core-json-sts",
    "node-tea-v3",
    "node-tea-v2",
    "node-tea-v3-sts",
    "node-popcore",
    "node-popcore-sts",
]


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def serve(
    settings: Settings, comparisons_factory: Callable[[Settings, Metrics], Comparisons] = start_comparisons
) -> Iterator[str]:
    """The real server on 127.0.0.1; yields ``127.0.0.1:PORT`` (what SDK configs call the endpoint)."""
    with run_server(settings, comparisons_factory=comparisons_factory) as url:
        yield url.removeprefix("http://")


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    expires = iso(datetime.now(timezone.utc) + timedelta(hours=2))
    document = {
        "keys": [
            {"AccessKeyId": AK.key_id, "AccessKeySecret": AK.secret, "Enabled": True, "Actions": ["CompareFaces"]},
            {"AccessKeyId": AK_DENIED.key_id, "AccessKeySecret": AK_DENIED.secret, "Actions": ["DescribeVerifyToken"]},
        ],
        "sts": [
            {
                "AccessKeyId": c.key_id,
                "AccessKeySecret": c.secret,
                "SecurityToken": c.token,
                "Expiration": expires,
                "Actions": actions,
            }
            for c, actions in ((STS, ["CompareFaces"]), (STS_DENIED, ["DescribeVerifyToken"]))
        ],
    }
    path = tmp_path_factory.mktemp("keys") / "access-keys.json"
    path.write_text(json.dumps(document))
    path.chmod(0o600)  # the server refuses a keys file others can read
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def conformance_settings(keys_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        access_keys_file=keys_file,
        object_store_root=tmp_path_factory.mktemp("oss"),
        fetch_allow_networks="127.0.0.1/32",  # the image URLs of ImageHost
        max_in_flight=64,
    )


@pytest.fixture(scope="session")
def signed_server(conformance_settings: Settings) -> Iterator[str]:
    """The real app, signatures required; yields ``127.0.0.1:PORT`` (what SDK configs call the endpoint)."""
    with serve(conformance_settings) as endpoint:
        yield endpoint


class FailingComparisons(ComparisonService):
    """The real service whose comparison step fails, for the 500 rows of the error table (which no
    valid input reaches): an unexpected exception for FacePic-FacePic pairs, the typed
    ``Error.CompareFacesError`` for pairs with an IDPic. Everything before it (HTTP, signatures,
    parameters, image loading) and the error rendering are the real server's."""

    async def compare(self, source: EncodedImage, target: EncodedImage) -> Comparison:
        def fail(_: object) -> Comparison:
            if ImageType.ID_PIC in (source[1], target[1]):
                raise CompareFacesError()
            raise RuntimeError("injected failure")

        return await self.run(fail)


def failing_comparisons(settings: Settings, metrics: Metrics) -> Comparisons:
    return FailingComparisons.start(load_engine(settings), settings, metrics)


@pytest.fixture(scope="session")
def failing_server(conformance_settings: Settings) -> Iterator[str]:
    with serve(conformance_settings, comparisons_factory=failing_comparisons) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def node_process() -> Iterator[NodeProcess | None]:
    if node_unavailable():
        yield None
        return
    process = NodeProcess()
    try:
        yield process
    finally:
        process.close()


@pytest.fixture(scope="session")
def make_driver(node_process: NodeProcess | None) -> Callable[[str, str], Driver]:
    """``make_driver(name, endpoint)``; skips Node drivers with the reason when Node is unusable."""
    cache: dict[tuple[str, str], Driver] = {}

    def make(name: str, endpoint: str) -> Driver:
        if (name, endpoint) in cache:
            return cache[(name, endpoint)]
        sts = name.endswith("-sts")
        driver: Driver
        if name.startswith("py-tea-"):
            driver = PythonTea(endpoint, algorithm="v2" if "-v2" in name else None, sts=sts)
        elif name.startswith("py-core-"):
            driver = PythonCore(endpoint, xml="-xml" in name, sts=sts)
        else:
            reason = node_unavailable()
            if reason or node_process is None:
                pytest.skip(reason or "node unavailable")
            client = "popcore" if name.startswith("node-popcore") else "tea"
            driver = NodeClient(
                node_process, endpoint, client=client, algorithm="v2" if "-v2" in name else None, sts=sts
            )
        assert driver.name == name, (driver.name, name)
        cache[(name, endpoint)] = driver
        return driver

    return make


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest, make_driver: Callable[[str, str], Driver], signed_server: str) -> Driver:
    return make_driver(request.param, signed_server)


@pytest.fixture()
def creds(driver: Driver) -> Credentials:
    return STS if driver.sts else AK


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``redis-server`` on 127.0.0.1 (skips with the reason when it is not installed)."""
    with run_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def redis_servers(conformance_settings: Settings, redis_url: str) -> Iterator[tuple[str, str]]:
    """Two servers behind an imaginary load balancer, sharing their nonces through one Redis."""
    settings = conformance_settings.model_copy(update={"redis_url": redis_url})
    with serve(settings) as first, serve(settings) as second:
        yield first, second


class ImageHost:
    """A local HTTP server that serves one JPEG at every path and counts the requests per path."""

    def __init__(self, image: bytes) -> None:
        hits: dict[str, int] = {}
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                hits[self.path] = hits.get(self.path, 0) + 1
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(image)))
                self.end_headers()
                self.wfile.write(image)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def image_host() -> Iterator[ImageHost]:
    host = ImageHost(encode(astronaut_face_crop()))
    try:
        yield host
    finally:
        host.close()
