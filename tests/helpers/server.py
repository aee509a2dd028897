"""Start the real app on 127.0.0.1: in a background thread (``run_server``) or as a separate
``python -m app serve`` process (``spawn_server``, the repository's one server-starting helper in
``bench/server.py``, which the benchmark and the load test use too) for tests that send it signals.

Logs: the in-thread server logs through the test process's root logger (which the session fixture
in ``tests/conftest.py`` also writes to a file); a spawned server's stdout and stderr go to a file
in ``$COMPAREFACES_TEST_LOG_DIR`` when set. The privacy test scans those files for image data.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from app.api.factory import create_app, start_comparisons
from app.api.protocol import uvicorn_http_options
from app.comparison import Comparisons
from app.metrics import Metrics
from app.settings import Settings
from app.tls import server_tls, uvicorn_tls_options
from bench import server as spawning
from bench.server import free_port

REPO = Path(__file__).resolve().parents[2]
LOG_DIR_VARIABLE = "COMPAREFACES_TEST_LOG_DIR"


@contextmanager
def run_server(
    settings: Settings,
    *,
    startup_timeout_s: float = 60.0,
    comparisons_factory: Callable[[Settings, Metrics], Comparisons] = start_comparisons,
) -> Iterator[str]:
    """Yield the base URL of a live server built by ``create_app(settings, comparisons_factory=...)``:
    ``https://`` when the settings name a certificate, as ``comparefaces serve`` does."""
    port = free_port()
    tls = server_tls(settings)
    config = uvicorn.Config(
        create_app(settings, comparisons_factory=comparisons_factory),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,  # as `comparefaces serve`: uvicorn's records reach the root logger
        access_log=False,
        lifespan="on",
        **uvicorn_http_options(settings),
        **uvicorn_tls_options(tls),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        if tls:  # up once it completes a handshake (the caller's tests check whom it trusts)
            wait_for_handshake(port, startup_timeout_s, thread.is_alive)
        else:
            spawning.wait_until_answering(base_url, startup_timeout_s, thread.is_alive)
    except Exception:
        server.should_exit = True
        raise
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_for_handshake(port: int, timeout_s: float, alive: Callable[[], bool]) -> None:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + timeout_s
    while alive():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock, context.wrap_socket(sock):
                return
        except OSError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    raise TimeoutError(f"no TLS handshake on 127.0.0.1:{port} within {timeout_s:.0f} s")


def log_file(name: str) -> Path | None:
    folder = os.environ.get(LOG_DIR_VARIABLE)
    return Path(folder) / name if folder else None


@contextmanager
def spawn_server(
    env: dict[str, str] | None = None,
    *,
    log_name: str = "spawned-server.log",
    cwd: Path | None = None,
    startup_timeout_s: float = 60.0,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m app serve`` on 127.0.0.1 with ``COMPAREFACES_*`` from ``env``; yields (base URL,
    process). The process is terminated (SIGTERM, then SIGKILL) if still running at the end."""
    with spawning.spawn_server(env, log=log_file(log_name), cwd=cwd or REPO, startup_timeout_s=startup_timeout_s) as (
        base_url,
        process,
    ):
        yield base_url, process
