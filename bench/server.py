"""Start ``comparefaces serve`` as a child process on 127.0.0.1 and wait until it answers.

The one server-starting helper of the repository: the benchmark, the load test and the test
suite's spawned servers (``tests/helpers/server.py``) all use it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

import app

APP_ROOT = Path(app.__file__).resolve().parents[1]  # the folder holding the ``app`` package


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answering(
    base_url: str,
    timeout_s: float,
    alive: Callable[[], bool] = lambda: True,
    path: str = "/healthz",
) -> None:
    """Poll ``GET base_url + path`` until it answers 200; raise if ``alive()`` turns false or time runs out.

    ``/healthz`` answers as soon as the server accepts requests; ``/readyz`` also says the access
    keys file is healthy (it answers 503 while it is not).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if not alive():
            raise RuntimeError(f"the server at {base_url} exited during start-up")
        try:
            if httpx.get(f"{base_url}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base_url}{path} did not answer 200 within {timeout_s:.0f} s")
        time.sleep(0.05)


def start_server(
    env: Mapping[str, str] | None = None,
    *,
    port: int | None = None,
    log: Path | None = None,
    inherit_output: bool = False,
    cwd: Path | None = None,
    startup_timeout_s: float = 60.0,
    ready_path: str = "/healthz",
) -> tuple[str, subprocess.Popen[bytes]]:
    """``python -m app serve`` on 127.0.0.1 and ``port`` (default: a free one), once it answers;
    returns (base URL, process). Stop it with :func:`stop_server`.

    The child gets this process's environment with ``env`` on top (an empty value unsets a
    ``COMPAREFACES_*`` setting). Its output is appended to ``log``, or shared with this process
    (``inherit_output``), or dropped.
    """
    port = port or free_port()
    python_path = os.pathsep.join(filter(None, [str(APP_ROOT), os.environ.get("PYTHONPATH")]))
    child_env = {**os.environ, "PYTHONPATH": python_path, **(env or {})}
    out = log.open("ab") if log else None
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=child_env,
            cwd=cwd,
            stdout=out if out else None if inherit_output else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if out or not inherit_output else None,
        )
    finally:
        if out:
            out.close()  # the child holds its own copy
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(base_url, startup_timeout_s, lambda: process.poll() is None, ready_path)
    except BaseException:
        stop_server(process)
        raise
    return base_url, process


def stop_server(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM (the server drains what it holds), then SIGKILL after ``timeout_s``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def spawn_server(
    env: Mapping[str, str] | None = None,
    *,
    log: Path | None = None,
    inherit_output: bool = False,
    cwd: Path | None = None,
    startup_timeout_s: float = 60.0,
    ready_path: str = "/healthz",
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`start_server` for a ``with`` block: stopped at its end if still running."""
    base_url, process = start_server(
        env,
        log=log,
        inherit_output=inherit_output,
        cwd=cwd,
        startup_timeout_s=startup_timeout_s,
        ready_path=ready_path,
    )
    try:
        yield base_url, process
    finally:
        stop_server(process)
