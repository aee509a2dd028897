from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.helpers.server import run_server

API = {"Action": "CompareFaces", "Version": "2019-03-07"}


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
