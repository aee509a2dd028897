"""Real infrastructure on 127.0.0.1 for the scale tests: server replicas (``python -m app serve``
processes on ports the test chooses, so a replica can be restarted in place), HAProxy in front of
them, Prometheus scraping them. Each skips the test with the reason when its binary is missing."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.server import start_server, stop_server
from bench.stats import percentile  # noqa: F401 (the tests' one percentile, re-exported)
from tests.conformance.clients import Credentials
from tests.helpers.server import REPO, free_port, log_file

AK = Credentials("LTAI5tFAKESCALEKEY0001", "ScaleSecret0123456789abcdefABCD")
AK_SECOND = Credentials("LTAI5tFAKESCALEKEY0002", "ScaleSecret0123456789abcdefWXYZ")


def write_keys(path: Path) -> Path:
    keys = [
        {"AccessKeyId": c.key_id, "AccessKeySecret": c.secret, "Actions": ["CompareFaces"]} for c in (AK, AK_SECOND)
    ]
    path.write_text(json.dumps({"keys": keys}))
    path.chmod(0o600)  # the server refuses a keys file others can read
    path.chmod(0o600)
    return path


def require(binary: str, package: str) -> str:
    found = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if found is None:
        pytest.skip(f"{binary} is not installed (Debian: apt-get install -y {package})")
    return found


def wait_until(check: object, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval_s)


def answers(url: str, path: str = "/readyz") -> bool:
    try:
        return httpx.get(url + path, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Replica:
    """One ``comparefaces serve`` process on a fixed port; ``start`` again after ``stop``/``kill``."""

    name: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> None:
        _, self.process = start_server(
            self.env,
            port=self.port,
            log=log_file(f"scale-{self.name}.log"),
            cwd=REPO,
            startup_timeout_s=timeout_s,
            ready_path="/readyz",
        )

    def terminate(self, timeout_s: float = 40.0) -> int:
        """SIGTERM and wait: the server drains what it holds, then exits."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no drain
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process is not None:
            stop_server(self.process)


@contextmanager
def replicas(count: int, env: dict[str, str]) -> Iterator[list[Replica]]:
    started = [Replica(f"r{i + 1}", env) for i in range(count)]
    try:
        for replica in started:  # one at a time: two cores are shared with everything else
            replica.start()
        yield started
    finally:
        for replica in started:
            replica.close()


HAPROXY_EXAMPLE = REPO / "deploy" / "haproxy" / "haproxy.cfg"


def haproxy_config(workdir: Path, port: int, backends: Sequence[Replica]) -> str:
    """The shipped example with this test's ports and replicas, and an admin socket."""
    text = HAPROXY_EXAMPLE.read_text()
    admin = f"    stats socket {workdir}/admin.sock mode 600 level admin\n"
    text = text.replace("global\n", "global\n" + admin, 1)
    text = re.sub(r"bind 127\.0\.0\.1:\d+", f"bind 127.0.0.1:{port}", text)
    text = re.sub(r"(?m)^    server .*\n", "", text)
    servers = "".join(f"    server {r.name} 127.0.0.1:{r.port} check\n" for r in backends)
    assert "stats socket" in text and f":{port}" in text
    return text + servers


@dataclass
class Balancer:
    url: str
    log_path: Path
    admin_socket: Path

    def admin(self, command: str) -> str:
        import socket

        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.admin_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_states(self) -> dict[str, str]:
        """Server name -> HAProxy's view (``UP``, ``DOWN``, ...), from ``show stat``."""
        lines = self.admin("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        states = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "replicas" and row.get("svname") not in ("BACKEND", "FRONTEND", None):
                states[row["svname"]] = row["status"]
        return states

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()


@contextmanager
def haproxy(workdir: Path, backends: Sequence[Replica]) -> Iterator[Balancer]:
    binary = require("haproxy", "haproxy")
    port = free_port()
    config = workdir / "haproxy.cfg"
    config.write_text(haproxy_config(workdir, port, backends))
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    log_path = workdir / "haproxy.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT)
    balancer = Balancer(f"http://127.0.0.1:{port}", log_path, workdir / "admin.sock")
    try:
        wait_until(lambda: balancer.admin_socket.exists() and answers(balancer.url), 15, "haproxy")
        wait_until(lambda: set(balancer.server_states().values()) == {"UP"}, 15, "every replica UP in haproxy")
        yield balancer
    finally:
        process.terminate()
        process.wait(timeout=10)


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{rules}"]
scrape_configs:
  - job_name: comparefaces
    static_configs:
      - targets: [{targets}]
"""


@dataclass
class Prometheus:
    url: str

    def query(self, expression: str) -> list[dict[str, object]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=5).json()
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def value(self, expression: str) -> float | None:
        result = self.query(expression)
        return float(result[0]["value"][1]) if result else None  # type: ignore[index]


@contextmanager
def prometheus(workdir: Path, targets: Sequence[str], rules: Path) -> Iterator[Prometheus]:
    """A real Prometheus on 127.0.0.1 scraping ``targets`` ("127.0.0.1:PORT") every second."""
    binary = require("prometheus", "prometheus")
    port = free_port()
    config = workdir / "prometheus.yml"
    quoted = ", ".join(f'"{target}"' for target in targets)
    config.write_text(PROMETHEUS_CONFIG.format(rules=rules, targets=quoted))
    log_path = workdir / "prometheus.log"
    with ExitStack() as stack:
        out = stack.enter_context(log_path.open("ab"))
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        server = Prometheus(f"http://127.0.0.1:{port}")
        try:
            wait_until(lambda: process.poll() is not None or answers(server.url, "/-/ready"), 30, "prometheus")
            assert process.poll() is None, log_path.read_text(errors="replace")[-2000:]
            yield server
        finally:
            process.terminate()
            process.wait(timeout=15)


@dataclass
class RedisProcess:
    """``redis-server`` on a fixed port with an append-only file (fsync on every write), so that it
    can be stopped, paused and restarted in place with the nonces it had recorded."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = require("redis-server", "redis-server")
        pytest.importorskip("redis", reason="the redis Python client is not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            import socket

            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_until(up, 10, "redis-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@dataclass
class Result:
    sent_at: float
    seconds: float
    ok: bool
    code: str


def call(sdk: object, params: dict[str, str], started: float) -> Result:
    """One signed CompareFaces through ``sdk`` (a conformance driver); any failure is a result too."""
    sent_at = time.monotonic()
    try:
        outcome = sdk.call(AK, params)  # type: ignore[attr-defined]
        ok, code = outcome.ok, outcome.code
    except Exception as error:  # the SDK's own transport errors (connection reset, 502 page...)
        ok, code = False, type(error).__name__
    return Result(sent_at - started, time.monotonic() - sent_at, ok, code)


def parse_haproxy_line(line: str) -> dict[str, str] | None:
    """``option httplog`` fields: server, status, termination state (``SH--``: the server hung up)."""
    parts = line.split()
    if len(parts) < 10 or "/" not in parts[3] or not parts[3].startswith("replicas/"):
        return None
    return {"server": parts[3].split("/", 1)[1], "status": parts[5], "termination": parts[9]}
