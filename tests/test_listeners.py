"""``comparefaces serve`` as a process: HTTPS on the API port, and the plain probe port that answers
only the probes and ``/metrics`` (which then leaves the API port, however its path is spelled)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.tools.tls import init
from bench.server import free_port, wait_until_answering
from tests.helpers.server import REPO, log_file


def test_https_api_with_a_plain_probe_port(tmp_path: Path) -> None:
    files = init(tmp_path / "tls", ["127.0.0.1"])[0]
    port, probe_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "COMPAREFACES_TLS_CERT_FILE": str(files.cert),
        "COMPAREFACES_TLS_KEY_FILE": str(files.key),
        "COMPAREFACES_PROBE_PORT": str(probe_port),
        "COMPAREFACES_OBJECT_STORE_ROOT": str(tmp_path / "oss"),
    }
    log = log_file("listeners-server.log") or tmp_path / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        probes = f"http://127.0.0.1:{probe_port}"
        wait_until_answering(probes, 90, lambda: process.poll() is None, "/readyz")
        assert "comparefaces_requests_total" in httpx.get(f"{probes}/metrics", timeout=5).text
        assert httpx.post(f"{probes}/", timeout=5).status_code == 404  # nothing but the probes here
        api = httpx.Client(
            base_url=f"https://127.0.0.1:{port}", verify=ssl.create_default_context(cafile=files.ca_cert)
        )
        with api:
            assert api.get("/healthz", timeout=5).status_code == 200
            for spelling in ("/metrics", "/%6Detrics", "/%6d%65trics"):
                answer = api.get(spelling, timeout=5)
                assert answer.status_code == 404, spelling
                assert answer.json()["Code"] == "InvalidAction.NotFound"
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            raise AssertionError("plain HTTP answered on the TLS port")
        except httpx.HTTPError:
            pass
        # A pooled client's idle keep-alive TLS connection, never read again, must not hold the shutdown
        # (closing TLS politely waits up to 30 s for the client's close_notify).
        tls = ssl.create_default_context(cafile=files.ca_cert)
        idle = tls.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1")
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=40)
    assert time.monotonic() - stopping < 10, "an idle TLS connection held the shutdown"
    idle.close()
    assert "Traceback" not in log.read_text(errors="replace")
