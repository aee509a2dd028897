"""The demo page and ``/metrics`` answer this server's own browsers only (no DNS rebinding, no
cross-site form or fetch), and the demo analyses uploaded files only: no ``oss://`` or URL address
whose face crop it would hand back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.local_surfaces import hostname_of
from app.settings import Settings
from tests.conftest import compare
from tests.demo.test_demo_api import FACE, pair
from tests.helpers.server import run_server
from tests.hostile.hostile_images import face_jpeg

SURFACES = [("GET", "/demo"), ("GET", "/demo/config"), ("GET", "/demo/static/demo.js"), ("POST", "/demo/analysis"),
            ("GET", "/metrics")]  # fmt: skip


@pytest.fixture(scope="module")
def local(server_settings: Settings) -> Iterator[httpx.Client]:
    """Open mode (the demo on), one extra allowed name."""
    settings = server_settings.model_copy(update={"allowed_hosts": "faces.internal, Demo.Example"})
    with run_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def send(client: httpx.Client, method: str, path: str, **headers: str) -> httpx.Response:
    data = pair() if method == "POST" else None
    return client.request(method, path, data=data, headers=headers)


@pytest.mark.parametrize(("method", "path"), SURFACES)
def test_a_foreign_host_name_is_refused(local: httpx.Client, method: str, path: str) -> None:
    for host in ("attacker.example", "attacker.example:8080", "127.0.0.1.nip.io", "localhost.attacker.example"):
        refused = send(local, method, path, host=host)
        assert refused.status_code == 403 and refused.json()["Code"] == "Error.NoPermissionAccess", host
    port = local.base_url.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "app.localhost", f"[::1]:{port}", "10.1.2.3:8080",
                 "faces.internal:8080", "demo.example"):  # fmt: skip
        assert send(local, method, path, host=host).status_code == 200, host


@pytest.mark.parametrize(("method", "path"), SURFACES)
def test_a_page_of_another_origin_is_refused(local: httpx.Client, method: str, path: str) -> None:
    own = f"http://127.0.0.1:{local.base_url.port}"
    for headers in ({"origin": "http://attacker.example"}, {"origin": "null"}, {"origin": "http://127.0.0.1:1"},
                    {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}):  # fmt: skip
        refused = send(local, method, path, **headers)
        assert refused.status_code == 403, headers
    for headers in ({"origin": own}, {"sec-fetch-site": "same-origin"}, {"sec-fetch-site": "none"}):
        assert send(local, method, path, **headers).status_code == 200, headers


def test_the_api_itself_is_not_guarded(local: httpx.Client) -> None:
    """SDKs call the API from anywhere by any name; the guard is for the local-development surfaces."""
    response = local.post("/", data={**pair()}, headers={"host": "faces.example.com", "origin": "http://x.example"})
    assert response.status_code == 200, response.text


def test_the_demo_takes_uploaded_files_only(local: httpx.Client, object_store_root: Path) -> None:
    (object_store_root / "faces").mkdir(exist_ok=True)
    (object_store_root / "faces" / "someone.jpg").write_bytes(face_jpeg())
    stored = "oss://faces:someone.jpg"
    assert compare(local, pair(stored, FACE)).status_code == 200  # the API reads it
    for source in (stored, "http://127.0.0.1:9/face.jpg", "HTTPS://faces.example/a.jpg", "OSS://faces:someone.jpg"):
        refused = local.post("/demo/analysis", data=pair(source, FACE))
        assert refused.status_code == 400 and refused.json()["Code"] == "InvalidParam.ImageValuePatternError"
        assert "uploaded files only" in refused.json()["Message"]
        assert "crop" not in refused.text


@pytest.mark.parametrize(
    ("host", "name"),
    [("Example.COM:80", "example.com"), ("[::1]:8080", "::1"), ("::1", "::1"), ("a.b", "a.b"), ("", "")],
)
def test_hostname_of(host: str, name: str) -> None:
    assert hostname_of(host) == name
