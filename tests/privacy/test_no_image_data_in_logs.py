"""Image bytes, base64 payloads and embeddings never reach logs or disk.

* A spawned server at DEBUG level, run in an empty working directory with an empty TMPDIR, gets
  requests that carry images everywhere a careless log line would pick them up (form, query
  string, Action, headers, path, URL queries, broken images, XML). Afterwards both directories are
  still empty and its log holds no image data.
* The same requests go to the in-thread test server, whose logs (INFO, as in production) land in
  the session's log file with those of every other test.
* The last test of the run scans every log the run wrote (the session log directory:
  in-thread servers, spawned servers, the load test's server) for image signatures. Only the
  official SDK clients' own records are left out (see ``CLIENT_LOGGERS`` in conftest.py): they
  log the answers they get, and a SignatureDoesNotMatch answer quotes the string to sign, image
  included, exactly as the original service does.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import CLIENT_LOG, LAST, SERVER_LOG, compare
from tests.helpers.image_host import image_host
from tests.helpers.images import LFW, b64
from tests.helpers.server import log_file, spawn_server
from tests.hostile.hostile_images import face_jpeg, face_png

PATTERNS: dict[str, re.Pattern[bytes]] = {
    "long base64 run": re.compile(rb"[A-Za-z0-9+/]{100,}={0,2}"),
    "long url-encoded base64 run": re.compile(rb"(?:[A-Za-z0-9]|%2[BbFf]){100,}"),
    "JPEG base64": re.compile(rb"/9j/[24]"),
    "JPEG base64, url-encoded": re.compile(rb"%2F9j%2F[24]"),
    "PNG base64": re.compile(rb"iVBORw0KGgo"),
    "WebP base64": re.compile(rb"UklGR[a-zA-Z0-9+/]{3}AAFdFQlA"),
    "JPEG bytes": re.compile(rb"\xff\xd8\xff"),
    "PNG bytes": re.compile(rb"\x89PNG"),
    "JFIF/Exif header": re.compile(rb"JFIF\x00|Exif\x00\x00"),
    "escaped JPEG/PNG bytes": re.compile(rb"\\xff\\xd8|\\x89PNG|\\\\xff\\\\xd8"),
    "numpy array": re.compile(rb"array\(\["),
    "float vector": re.compile(rb"(?:-?\d\.\d{3,}(?:e-?\d+)?[,\s]+){16,}"),
}


ONNXRUNTIME_SESSION_MARKER = re.compile(rb"\d+\n[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n")


def photo_fragments() -> dict[str, bytes]:
    """Pieces of the base64 of photos the tests send, to find them verbatim as well."""
    photos = {"astronaut jpeg": face_jpeg(), "astronaut png": face_png()}
    if LFW.is_dir():
        for path in sorted(LFW.glob("A*/*_0001.jpg"))[:20]:
            photos[path.name] = path.read_bytes()
    fragments = {}
    for name, data in photos.items():
        text = base64.b64encode(data)
        for at in (len(text) // 3, len(text) // 2):
            fragments[f"{name} base64"] = text[at : at + 32]
        fragments[f"{name} bytes"] = data[len(data) // 2 : len(data) // 2 + 16]
    return fragments


def findings(files: Iterable[Path]) -> list[str]:
    fragments = photo_fragments()
    found = []
    for path in files:
        data = path.read_bytes()
        for name, pattern in PATTERNS.items():
            match = pattern.search(data)
            if match:
                found.append(f"{path.name}: {name} at byte {match.start()}: {match.group()[:40]!r}")
        for name, fragment in fragments.items():
            if fragment in data:
                found.append(f"{path.name}: {name} fragment")
    return found


def hostile_workload(url: str, images: str) -> int:
    """Images wherever a log line could pick them up. Returns how many requests were sent."""
    face = b64(face_jpeg())
    payload = face.removeprefix("base64://")
    good = {
        "SourceImageType": "FacePic",
        "SourceImageValue": face,
        "TargetImageType": "FacePic",
        "TargetImageValue": b64(face_png()),
    }
    sent = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        requests: list[httpx.Response] = [
            compare(client, good),
            compare(client, {**good, "Format": "XML"}),
            compare(
                client,
                {**good, "SourceImageValue": b64(b"x" * 3000), "TargetImageValue": b64(b"y" * 3000)},
                in_query=True,
            ),
            compare(client, {**good, "TargetImageValue": b64(face_jpeg()[:900])}),  # broken image
            compare(client, {**good, "TargetImageValue": "base64://" + payload[:5000] + "%%%"}),
            compare(client, {**good, "TargetImageType": payload[:3000]}),
            compare(client, {**good, "Version": payload[:3000]}),
            compare(client, {**good, "TargetImageValue": f"{images}/missing?token={quote(payload[:2000])}"}),
            compare(client, {**good, "TargetImageValue": f"http://user:{payload[:200]}@127.0.0.1:9/x.jpg"}),
            client.post("/", data={**good, "Action": payload[:3000], "Version": "2019-03-07"}),
            client.post("/", data=good, headers={"x-acs-action": payload[:3000], "x-acs-version": "2019-03-07"}),
            client.post("/" + quote(payload[:3000], safe=""), data=good),
            client.get("/", params={"Action": "CompareFaces", "SourceImageValue": payload[:3000]}),
            client.post("/", content=b"&".join([b"a=" + payload[:20].encode()] * 2000)),
        ]
        sent = len(requests)
        assert requests[0].status_code == 200
        assert all(response.status_code < 500 for response in requests), [r.status_code for r in requests]
    return sent


def test_scanner_finds_image_data(tmp_path: Path) -> None:
    """The scan is not vacuous: each kind of leak it looks for is found in a planted log."""
    for leak in (
        b64(face_jpeg()),
        quote(b64(face_png())),
        repr(face_jpeg()[:40]),
        "array([0.1, 0.2])",
        " ".join(f"{v:.6f}" for v in range(-8, 12)),
    ):
        planted = tmp_path / "planted.log"
        planted.write_text(f"2026-01-01 INFO comparefaces: something {leak} else\n")
        assert findings([planted]), leak
    clean = tmp_path / "clean.log"
    clean.write_text(
        "INFO comparefaces.access: request_id=0B9B2E57-6A79-4E4B-9F0A-5B5A5B9B3C1D key_id=- "
        "action=CompareFaces status=200 latency_ms=123.4\n"
    )
    assert not findings([clean])


def test_spawned_server_writes_no_image_data(tmp_path: Path) -> None:
    work, temp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    temp.mkdir()
    env = {
        "COMPAREFACES_LOG_LEVEL": "debug",
        "COMPAREFACES_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
        "TMPDIR": str(temp),
        "TEMP": str(temp),
        "TMP": str(temp),
        "COMPAREFACES_OBJECT_STORE_ROOT": str(tmp_path / "oss"),
    }
    with (
        image_host(face_jpeg()) as (images, _),
        spawn_server(env, log_name="privacy-debug-server.log", cwd=work) as (url, _),
    ):
        assert hostile_workload(url, images) > 10
    assert list(work.iterdir()) == [], "the server wrote files in its working directory"
    written = {path.name: path.read_bytes() for path in temp.iterdir()}
    # onnxruntime (1.2x+) writes a telemetry session marker at import: a timestamp and a random id
    marker = written.pop(".ses", None)
    assert marker is None or ONNXRUNTIME_SESSION_MARKER.fullmatch(marker), marker
    assert written == {}, f"the server wrote temporary files: {sorted(written)}"
    log = log_file("privacy-debug-server.log")
    assert log is not None
    text = log.read_text(errors="replace")
    assert "request_id=" in text  # the access log really is in there
    assert not findings([log]), findings([log])


def test_in_thread_server_logs(server: str) -> None:
    """Fills the session log that the last test scans."""
    with image_host(face_jpeg()) as (images, _):
        assert hostile_workload(server, images) > 10


@pytest.mark.run_last
def test_logs_of_the_whole_run_hold_no_image_data(session_log_dir: Path, request: pytest.FixtureRequest) -> None:
    later = request.session.items[request.session.items.index(request.node) + 1 :]
    assert all(item.get_closest_marker(LAST) for item in later), "tests run after the scan go unchecked"
    client_log = session_log_dir / CLIENT_LOG  # the SDK clients' own logs, not the server's
    files = sorted(path for path in session_log_dir.rglob("*") if path.is_file() and path != client_log)
    process_log = session_log_dir / SERVER_LOG
    assert process_log in files
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "comparefaces.access" in process_log.read_text(errors="replace"), "no access log captured"
    assert not findings(files), findings(files)
