from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.helpers.gateway import gateway
from tests.helpers.server import LOG_DIR_VARIABLE, run_server

API = {"Action": "CompareFaces", "Version": "2019-03-07"}
LAST = "run_last"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{LAST}: run after every other collected test (the privacy log scan)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker(LAST) is not None)  # stable: order kept otherwise


# Loggers of the client side of tests (the official SDKs, the fuzzers). The SDKs log the answers
# they get, and SignatureDoesNotMatch answers quote the string to sign, images included, as the
# original service does: those are the client's logs, kept apart from the server's.
CLIENT_LOGGERS = ("aliyunsdkcore", "alibabacloud", "darabonba", "Tea", "oss2", "schemathesis", "hypothesis")
SERVER_LOG = "test-process.log"
CLIENT_LOG = "test-clients.log"


class _ClientRecords(logging.Filter):
    def __init__(self, keep_clients: bool) -> None:
        super().__init__()
        self.keep_clients = keep_clients

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith(CLIENT_LOGGERS) == self.keep_clients


@pytest.fixture(scope="session", autouse=True)
def session_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every log of the run lands here: the test process's (in-thread servers) at INFO, as
    ``comparefaces serve`` logs, and spawned servers' output. The privacy test scans it
    (all but the client libraries' records, which go to their own file)."""
    folder = tmp_path_factory.mktemp("logs")
    root = logging.getLogger()
    handlers = []
    for name, keep_clients in ((SERVER_LOG, False), (CLIENT_LOG, True)):
        handler = logging.FileHandler(folder / name, encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_ClientRecords(keep_clients))
        root.addHandler(handler)
        handlers.append(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # as app.logs.configure_logging
    os.environ[LOG_DIR_VARIABLE] = str(folder)
    yield folder
    os.environ.pop(LOG_DIR_VARIABLE, None)
    root.setLevel(previous_level)
    for handler in handlers:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture(scope="session")
def object_store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oss")


@pytest.fixture(scope="session")
def server_settings(object_store_root: Path) -> Settings:
    return Settings(object_store_root=object_store_root, fetch_allow_networks="127.0.0.1/32", max_in_flight=64)


@pytest.fixture(scope="session")
def server(server_settings: Settings) -> Iterator[str]:
    """The real app with the embedded default models, shared by the API tests."""
    with run_server(server_settings) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def gateway_client(server_settings: Settings) -> Iterator[httpx.Client]:
    """The app in-process with a stand-in comparison service (``tests/helpers/gateway.py``): for
    protocol tests that need neither a socket nor real faces."""
    with gateway(server_settings) as client:
        yield client


@pytest.fixture()
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=60) as http:
        yield http


def compare(client: httpx.Client, params: dict[str, str], *, in_query: bool = False) -> httpx.Response:
    """POST a CompareFaces request the way the RPC SDKs do (form body by default)."""
    merged = {**API, **params}
    if in_query:
        return client.post("/", params=merged)
    return client.post("/", data=merged)
