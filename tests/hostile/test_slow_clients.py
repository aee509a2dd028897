"""A few connections must not lock everyone out: idle and half-sent heads are closed, slow bodies are
dropped at the minimum rate, unsigned bodies cannot take the slots that V3-signed callers need, an
image host that never answers holds its own request and not a comparison slot, one access key
cannot take another's share, and a body over the limit still gets its error. Loopback only,
bounded in count and time."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.conftest import compare
from tests.helpers.image_host import image_host
from tests.helpers.images import b64
from tests.helpers.server import run_server
from tests.hostile.hostile_images import face_jpeg
from tests.hostile.rawhttp import answered_within, capturing_endpoint, connect, connect_from, read_response

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
KEYS = {"A": "secret-for-key-A-0123456789", "B": "secret-for-key-B-0123456789"}
PATTERN = "InvalidParam.ImageValuePatternError"
OK = (200, "1")  # HTTP status, the body's Code of a comparison
HALF_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\n"
SLOW_BODY_HEAD = HALF_HEAD + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\na"


def pair(target: str | None = None) -> dict[str, str]:
    return {
        "SourceImageType": "FacePic",
        "SourceImageValue": b64(face_jpeg()),
        "TargetImageType": "FacePic",
        "TargetImageValue": target or b64(face_jpeg()),
    }


def keys_file(folder: Path) -> Path:
    path = folder / "keys.json"
    path.write_text(json.dumps({"keys": [{"AccessKeyId": k, "AccessKeySecret": s} for k, s in KEYS.items()]}))
    path.chmod(0o600)
    return path


def tea_compare(base_url: str, key_id: str, target: str | None = None) -> tuple[int, str]:
    """A CompareFaces call through the official Python Tea SDK (V3 signature): (status, code)."""
    from alibabacloud_cloudauth20190307 import models
    from alibabacloud_cloudauth20190307.client import Client
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_openapi.exceptions import AlibabaCloudException

    config = open_api_models.Config(
        access_key_id=key_id,
        access_key_secret=KEYS[key_id],
        endpoint=base_url.removeprefix("http://"),
        protocol="http",
        read_timeout=30_000,
        connect_timeout=5_000,
    )
    params = pair(target)
    request = models.CompareFacesRequest(
        source_image_type=params["SourceImageType"],
        source_image_value=params["SourceImageValue"],
        target_image_type=params["TargetImageType"],
        target_image_value=params["TargetImageValue"],
    )
    try:
        response = Client(config).compare_faces(request)
    except AlibabaCloudException as error:
        return int(error.status_code or 0), str(error.code)
    return int(response.status_code), str(response.body.code)


@contextmanager
def held_connections(base_url: str, count: int, first_bytes: bytes) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(connect(base_url, timeout_s=10))
            if first_bytes:
                sock.sendall(first_bytes)
            sockets.append(sock)
        yield sockets


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_idle_and_half_sent_heads_are_closed_after_the_grace_period() -> None:
    settings = Settings(slow_client_grace_s=1.0, slow_client_min_rate=1000)
    with run_server(settings) as url:
        started = time.monotonic()
        with (
            held_connections(url, 20, b"") as idle,
            held_connections(url, 20, b"POST / HTTP/1.1\r\nHost: x\r\n") as half,
        ):
            assert all(closed_by_server(sock, 5.0) for sock in idle + half)
        assert time.monotonic() - started < 8
        with connect(url) as dripping:  # one byte at a time: closed once behind the rate
            closed = False
            for byte in b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n" * 10:
                try:
                    dripping.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.1)
            assert closed or closed_by_server(dripping, 3.0)
        assert httpx.get(f"{url}/healthz").status_code == 200
        with httpx.Client(base_url=url, timeout=30) as client:
            assert compare(client, pair()).status_code == 200  # a kept-alive, normal client is unaffected


def test_slow_body_is_answered_at_the_minimum_rate() -> None:
    with run_server(Settings(slow_client_grace_s=1.0, slow_client_min_rate=1000)) as url, connect(url) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        started = time.monotonic()
        with pytest.raises(OSError):  # the server answers and closes while we still drip
            for _ in range(200):
                sock.sendall(b"a=aaaaaaaa")
                time.sleep(0.05)
        assert time.monotonic() - started < 6


def test_body_over_the_limit_gets_its_error_not_a_reset() -> None:
    with run_server(Settings(max_body_bytes=200_000)) as url, httpx.Client(base_url=url, timeout=30) as client:
        for size in (200_001, 1_000_000):
            response = client.post("/", content=b"a=" + b"b" * size, headers={"content-type": "text/plain"})
            assert response.status_code == 400 and response.json()["Code"] == PATTERN
        chunked = client.post("/", content=iter([b"c" * 100_000] * 5))  # no Content-Length: counted as it comes
        assert chunked.status_code == 400 and chunked.json()["Code"] == PATTERN


def test_slow_unsigned_bodies_cannot_take_the_slots_of_signed_callers(tmp_path: Path) -> None:
    pytest.importorskip("alibabacloud_cloudauth20190307")
    settings = Settings(
        access_keys_file=keys_file(tmp_path),
        max_open_requests=16,
        max_unverified_bodies=8,
        slow_client_grace_s=60,  # the slow senders are not dropped during the test
    )
    with run_server(settings) as url, held_connections(url, 24, SLOW_BODY_HEAD):
        time.sleep(0.5)
        assert tea_compare(url, "A") == OK  # V3 verified from its head: a reserved slot


def test_an_image_host_that_never_answers_holds_no_comparison_slot() -> None:
    settings = Settings(
        max_in_flight=2, fetch_allow_networks="127.0.0.1/32", fetch_read_timeout_s=6, fetch_total_timeout_s=6
    )
    with (
        run_server(settings) as url,
        image_host(face_jpeg()) as (images, host),
        ThreadPoolExecutor(max_workers=4) as pool,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        dead = [pool.submit(compare, client, pair(f"{images}/dead/face.jpg")) for _ in range(4)]
        for _ in dead:
            assert host.wait_started()
        assert compare(client, pair()).status_code == 200  # while four fetches hang
        assert all(future.result().json()["Code"] == "InvalidParam.ImageNotFound" for future in dead)


def test_one_key_cannot_take_another_keys_share(tmp_path: Path) -> None:
    pytest.importorskip("alibabacloud_cloudauth20190307")
    settings = Settings(
        access_keys_file=keys_file(tmp_path),
        max_in_flight=8,
        max_in_flight_per_key=2,
        fetch_allow_networks="127.0.0.1/32",
        fetch_read_timeout_s=5,
        fetch_total_timeout_s=5,
    )
    with run_server(settings) as url, image_host(face_jpeg()) as (images, host), ThreadPoolExecutor(4) as pool:
        held = [pool.submit(tea_compare, url, "A", f"{images}/dead/face.jpg") for _ in range(2)]
        for _ in held:
            assert host.wait_started()
        assert tea_compare(url, "A") == (429, "Throttling.User")  # A's share is full
        assert tea_compare(url, "B") == OK  # B's is not
        assert [future.result()[1] for future in held] == ["InvalidParam.ImageNotFound"] * 2


def captured_tea_request(key_id: str) -> bytes:
    """A Tea SDK CompareFaces request of ``key_id`` (V3), captured before any server saw it."""
    with capturing_endpoint() as (endpoint, captured), contextlib.suppress(Exception):  # answered 503: it gives up
        tea_compare(endpoint, key_id)
    assert captured
    return captured[0]


def sending_the_head_only(url: str, request: bytes, count: int, source: str) -> list[socket.socket]:
    head, _, body = request.partition(b"\r\n\r\n")
    sockets = []
    for _ in range(count):
        sock = connect_from(url, source)
        sock.sendall(head + b"\r\n\r\n" + body[:100])  # and then trickles, or nothing
        sockets.append(sock)
    return sockets


def answer_code(sock: socket.socket) -> str:
    return str(read_response(sock).json()["Code"])


def test_a_spent_v3_head_on_many_connections_is_refused_from_the_head(tmp_path: Path) -> None:
    pytest.importorskip("alibabacloud_cloudauth20190307")
    settings = Settings(access_keys_file=keys_file(tmp_path), max_open_requests=16, slow_client_grace_s=60)
    request = captured_tea_request("A")
    with run_server(settings) as url:
        with connect(url) as sock:
            sock.sendall(request)  # served once: its nonce is spent
            assert read_response(sock).json()["Code"] == "1"
        replays = sending_the_head_only(url, request, 32, "127.0.0.2")
        try:
            assert [answer_code(sock) for sock in replays] == ["SignatureNonceUsed"] * 32  # none takes a slot
            assert tea_compare(url, "B") == OK
            assert tea_compare(url, "A") == OK
        finally:
            for sock in replays:
                sock.close()


def test_an_unspent_v3_head_on_many_trickling_connections_is_received_once(tmp_path: Path) -> None:
    pytest.importorskip("alibabacloud_cloudauth20190307")
    settings = Settings(
        access_keys_file=keys_file(tmp_path), max_open_requests=16, max_receiving_per_key=4, slow_client_grace_s=60
    )
    request = captured_tea_request("A")
    with run_server(settings) as url:
        copies = sending_the_head_only(url, request, 24, "127.0.0.2")
        try:
            time.sleep(0.5)
            refused = [sock for sock in copies if answered_within(sock, 0.05)]
            assert len(refused) == 23 and {answer_code(sock) for sock in refused} == {"SignatureNonceUsed"}
            assert tea_compare(url, "B") == OK  # another key is not locked out
            assert tea_compare(url, "A") == OK  # nor A's own next call: one receipt per (key, nonce)
        finally:
            for sock in copies:
                sock.close()


def test_trickling_unsigned_bodies_that_reconnect_do_not_lock_out_rpc_v1_callers(tmp_path: Path) -> None:
    """RPC v1 signs the body, but its head names a known key with a fresh timestamp and an unused
    nonce (the core SDK and Tea RPC put the common parameters in the query): its own share."""
    pytest.importorskip("aliyunsdkcore")
    settings = Settings(
        access_keys_file=keys_file(tmp_path),
        max_open_requests=16,
        max_unverified_bodies=8,
        max_claimed_bodies=4,
        max_bodies_per_client=4,
        slow_client_grace_s=60,
    )
    stop = threading.Event()
    with run_server(settings) as url, ThreadPoolExecutor(4) as pool:

        def trickle(source: str) -> int:  # hold as many unsigned bodies as allowed, reconnect when refused
            held, refused = [], 0
            while not stop.is_set():
                sock = connect_from(url, source)
                sock.sendall(SLOW_BODY_HEAD)
                if answered_within(sock, 0.05):
                    sock.close()
                    refused += 1
                else:
                    held.append(sock)
            for sock in held:
                sock.close()
            return refused

        floods = [pool.submit(trickle, f"127.0.0.{n}") for n in (2, 3, 4)]
        time.sleep(1.0)
        try:
            assert [core_compare(url, "A") for _ in range(3)] == [OK] * 3
        finally:
            stop.set()
        assert all(flood.result() > 0 for flood in floods)  # they were refused and reconnected meanwhile


def core_compare(base_url: str, key_id: str) -> tuple[int, str]:
    """A CompareFaces call through the core SDK (RPC v1, common parameters in the query): (status, code)."""
    from aliyunsdkcloudauth.request.v20190307.CompareFacesRequest import CompareFacesRequest
    from aliyunsdkcore.client import AcsClient

    host, port = base_url.removeprefix("http://").split(":")
    request = CompareFacesRequest()
    for name, value in pair().items():
        getattr(request, f"set_{name}")(value)
    request.set_endpoint(host)
    request.set_protocol_type("http")
    request.set_accept_format("JSON")
    status, _, body, _ = AcsClient(key_id, KEYS[key_id], "cn-hangzhou", port=int(port))._implementation_of_do_action(
        request
    )
    return int(status), str(json.loads(body)["Code"])


FLOOD = """
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
head = (b"POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/x-www-form-urlencoded\\r\\n"
        b"Transfer-Encoding: chunked\\r\\n\\r\\n")
body = b"1\\r\\na\\r\\n" * 1_300_000  # 7.8 MB, under the body limit
ends = time.monotonic() + seconds
while time.monotonic() < ends:  # one connection at a time, sending 1-byte chunks as fast as it can
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(head)
            for at in range(0, len(body), 65536):
                sock.sendall(body[at : at + 65536])
            while sock.recv(65536):
                pass
    except OSError:
        pass
    time.sleep(0.1)
"""


def test_bodies_of_one_byte_chunks_do_not_slow_signed_comparisons(tmp_path: Path) -> None:
    pytest.importorskip("alibabacloud_cloudauth20190307")
    settings = Settings(access_keys_file=keys_file(tmp_path))
    with run_server(settings) as url:
        host, port = url.removeprefix("http://").split(":")
        tea_compare(url, "A")  # warm
        baseline = timed_comparisons(url, 6)
        floods = [subprocess.Popen([sys.executable, "-c", FLOOD, host, port, "60"]) for _ in range(2)]
        try:
            time.sleep(0.5)
            flooded = timed_comparisons(url, 6)
        finally:
            for flood in floods:
                flood.kill()
                flood.wait()
    assert statistics.median(flooded) < max(1.0, 3 * statistics.median(baseline)), (baseline, flooded)


def timed_comparisons(url: str, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        assert tea_compare(url, "A") == OK
        seconds.append(time.perf_counter() - started)
    return seconds
