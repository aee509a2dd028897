"""The HTTP load driver: concurrent clients, each on its own keep-alive connection, back to back."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.probe import ProcessProbe
from bench.stats import percentile

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Level:
    concurrency: int
    comparisons: int
    errors: int
    seconds: float
    per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    server_cpu_ms_per_comparison: float | None = None
    server_cores_busy: float | None = None  # server CPU seconds / wall seconds
    peak_rss_mb: float | None = None
    client_cpu_ms_per_comparison: float | None = None  # this process (the load generator), for context
    error_codes: dict[str, int] | None = None


def error_code(status: int, content: bytes) -> str:
    """The answer's Alibaba ``Code`` (or what failed) for an answer that is not a comparison."""
    if status == 0:
        return f"connection failed ({content.decode()})"
    try:
        return str(json.loads(content).get("Code", status))
    except ValueError:
        return f"HTTP {status}"


def compared(status: int, content: bytes) -> bool:
    return status == 200 and b'"SimilarityScore"' in content


class Connection:
    """One keep-alive HTTP/1.1 connection (``http.client``: a fraction of httpx's CPU per request, which
    matters when the load generator shares the server's cores)."""

    def __init__(self, url: str, timeout_s: float = 120.0) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._connect = lambda: kind(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
        self._path = (parts.path.rstrip("/") or "") + "/"
        self._conn = self._connect()

    def post(self, body: bytes) -> tuple[int, bytes]:
        """(status, body); a failed connection is reopened for the next request and reads as status 0."""
        try:
            self._conn.request("POST", self._path, body=body, headers=FORM)
            reply = self._conn.getresponse()
            return reply.status, reply.read()
        except (OSError, ConnectionError) as exc:
            self._conn.close()
            self._conn = self._connect()
            return 0, type(exc).__name__.encode()

    def close(self) -> None:
        self._conn.close()


def post_all(url: str, bodies: Sequence[bytes], concurrency: int) -> list[str | None]:
    """Each body once, ``concurrency`` at a time: None where compared, else the error code."""
    local = threading.local()

    def one(body: bytes) -> str | None:
        if not hasattr(local, "connection"):
            local.connection = Connection(url)
        status, content = local.connection.post(body)
        return None if compared(status, content) else error_code(status, content)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, bodies))


def drive(url: str, bodies: Sequence[bytes], concurrency: int, duration_s: float, probe: ProcessProbe | None) -> Level:
    """``concurrency`` clients, each on its own keep-alive connection, send requests back to back."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    marks: dict[str, float] = {}

    def start_clock() -> None:  # run by the barrier once every client is connected, before releasing them
        if probe:
            probe.start_sampling()
            marks["server_cpu"] = probe.cpu_seconds()
        marks["client_cpu"] = time.process_time()
        marks["started"] = time.perf_counter()
        marks["deadline"] = marks["started"] + duration_s

    barrier = threading.Barrier(concurrency, action=start_clock)

    def client(offset: int) -> None:
        connection = Connection(url)
        try:
            barrier.wait(timeout=120)
            deadline = marks["deadline"]
            i = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status, content = connection.post(bodies[i % len(bodies)])
                elapsed = time.perf_counter() - started
                with lock:
                    if compared(status, content):
                        latencies.append(elapsed)
                    else:
                        errors[error_code(status, content)] += 1
                i += 1
        finally:
            connection.close()

    stride = max(1, len(bodies) // concurrency)  # clients start at different pairs
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client, k * stride) for k in range(concurrency)]:
            future.result()
    seconds = time.perf_counter() - marks["started"]
    client_cpu = time.process_time() - marks["client_cpu"]
    done = len(latencies)
    attempts = max(1, done + sum(errors.values()))
    level = Level(
        concurrency=concurrency,
        comparisons=done,
        errors=sum(errors.values()),
        seconds=round(seconds, 2),
        per_s=round(done / seconds, 2),
        p50_ms=round(percentile(latencies, 50) * 1000, 1),
        p99_ms=round(percentile(latencies, 99) * 1000, 1),
        mean_ms=round(sum(latencies) / max(1, done) * 1000, 1),
        client_cpu_ms_per_comparison=round(client_cpu / attempts * 1000, 2),
        error_codes=dict(errors) or None,
    )
    if probe:
        server_cpu = probe.cpu_seconds() - marks["server_cpu"]
        level.server_cpu_ms_per_comparison = round(server_cpu / attempts * 1000, 1)
        level.server_cores_busy = round(server_cpu / seconds, 2)
        level.peak_rss_mb = round(probe.stop_sampling(), 1)
    return level
