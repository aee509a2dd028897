"""Graceful shutdown of a real ``comparefaces serve`` process: on SIGTERM it stops accepting
connections and closes idle ones at once, lets the requests in flight finish with their normal
answer, runs the lifespan's shutdown (loaders closed, inference pool drained), then exits."""

from __future__ import annotations

import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import compare
from tests.helpers.image_host import image_host
from tests.helpers.images import b64
from tests.helpers.server import log_file, spawn_server
from tests.hostile.hostile_images import face_jpeg
from tests.hostile.rawhttp import closed_by_peer, connect, read_response

FACE = face_jpeg()


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs POSIX signals")
def test_sigterm_finishes_in_flight_requests_and_refuses_new_ones() -> None:
    env = {"COMPAREFACES_FETCH_ALLOW_NETWORKS": "127.0.0.1/32", "COMPAREFACES_LOG_LEVEL": "info"}
    with image_host(FACE) as (images, host), spawn_server(env, log_name="shutdown-server.log") as (url, process):
        slow = {
            "SourceImageType": "FacePic",
            "SourceImageValue": f"{images}/slow/2/face.jpg",
            "TargetImageType": "FacePic",
            "TargetImageValue": b64(FACE),
        }
        idle = connect(url)  # a kept-alive connection that has finished its request
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(idle).status == 200
        with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(compare, client, slow)
            assert host.wait_started()  # the request is in the server, fetching its image
            sent_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 5
            while not refused(url):  # the listening socket goes away at once
                assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
                time.sleep(0.05)
            assert time.monotonic() - sent_at < 1.5
            assert closed_by_peer(idle, 2), "idle keep-alive connection left open"
            response = in_flight.result(timeout=30)
            assert response.status_code == 200, response.text
            assert response.json()["Data"]["SimilarityScore"] > 99
        # uvicorn re-raises the signal once shut down: killed by SIGTERM, after a clean lifespan end
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        idle.close()
    log = log_file("shutdown-server.log")
    if log is not None:
        text = log.read_text(errors="replace")
        assert "Application shutdown complete" in text
        assert "Traceback" not in text
