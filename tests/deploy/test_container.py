"""The image, built and run here with podman (rootful, runc, the project's containers.conf), and
the compose file's CPU service run with podman-compose. The base image is the local stand-in for
python:3.11-slim that scripts/container-base.sh makes from Debian's packages (no registry is
reachable); .ci/run makes it when podman is usable, and these tests skip when it is absent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.tools.tls import init
from tests.conformance.clients import PythonCore
from tests.helpers.images import b64
from tests.helpers.server import REPO, free_port
from tests.hostile.hostile_images import face_jpeg
from tests.scale.cluster import AK, write_keys

pytestmark = pytest.mark.container
CONF = REPO / "deploy" / "podman" / "containers.conf"
BASE = "docker.io/library/python:3.11-slim"
TAG = "localhost/comparefaces:ci-test"
ENV = {**os.environ, "CONTAINERS_CONF": str(CONF), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
KEYS_IN_CONTAINER = "/etc/comparefaces/keys/access-keys.json"


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, env=ENV, timeout=timeout)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (Debian: apt-get install -y podman runc)")
    if os.geteuid() != 0:
        pytest.skip("these tests run rootful podman (as CI does)")
    if podman("info", check=False, timeout=60).returncode != 0:
        pytest.skip("podman is installed but not usable here")
    if podman("image", "exists", BASE, check=False).returncode != 0:
        pytest.skip(f"no base image {BASE}: run scripts/container-base.sh (debootstrap) first")
    started = time.monotonic()
    built = subprocess.run(
        [str(REPO / "scripts" / "container-build.sh"), TAG], capture_output=True, text=True, env=ENV, timeout=900
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    inspect = json.loads(podman("image", "inspect", TAG).stdout)[0]
    print(f"image {TAG}: built in {time.monotonic() - started:.0f} s, {inspect['Size'] / 1e6:.0f} MB")
    return TAG


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keys file the image's user (uid 10001) owns, mode 600, as the server requires."""
    folder = tmp_path_factory.mktemp("container-keys")
    folder.chmod(0o755)
    path = write_keys(folder / "access-keys.json")
    os.chown(path, 10001, 10001)
    return folder


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``comparefaces tls init`` for 127.0.0.1 (where the ports are published), the key owned by the
    image's user."""
    folder = tmp_path_factory.mktemp("container-tls")
    files = init(folder, ["127.0.0.1"])[0]
    folder.chmod(0o755)
    os.chown(files.key, 10001, 10001)
    return folder


TLS_ENV = [
    "-e",
    "COMPAREFACES_TLS_CERT_FILE=/etc/comparefaces/tls/server.pem",
    "-e",
    "COMPAREFACES_TLS_KEY_FILE=/etc/comparefaces/tls/server-key.pem",
]


def pair() -> dict[str, str]:
    face = b64(face_jpeg())
    return {
        "SourceImageType": "FacePic",
        "SourceImageValue": face,
        "TargetImageType": "FacePic",
        "TargetImageValue": face,
    }


def wait_healthy(container: str, timeout_s: float = 90) -> float:
    """Seconds until ``podman healthcheck run`` passes (no systemd here: run by hand)."""
    started = time.monotonic()
    while podman("healthcheck", "run", container, check=False, timeout=30).returncode != 0:
        state = podman("inspect", "--format", "{{.State.Status}}", container, check=False).stdout.strip()
        assert state == "running", podman("logs", container, check=False).stdout[-3000:]
        assert time.monotonic() - started < timeout_s, "never healthy"
        time.sleep(0.25)
    return time.monotonic() - started


@pytest.fixture()
def container(image: str, keys_dir: Path, tls_dir: Path) -> Iterator[tuple[str, int, int]]:
    name, port, probe_port = f"comparefaces-test-{os.getpid()}", free_port(), free_port()
    podman(
        "run",
        "-d",
        "--name",
        name,
        "--read-only",
        "-p",
        f"127.0.0.1:{port}:8080",
        "-p",
        f"127.0.0.1:{probe_port}:9090",
        "-v",
        f"{keys_dir}:/etc/comparefaces/keys:ro",
        "-v",
        f"{tls_dir}:/etc/comparefaces/tls:ro",
        "-e",
        f"COMPAREFACES_ACCESS_KEYS_FILE={KEYS_IN_CONTAINER}",
        *TLS_ENV,
        image,
    )
    try:
        yield name, port, probe_port
    finally:
        podman("rm", "-f", "-t", "5", name, check=False)


def test_image_runs_non_root_read_only_healthy_and_compares(
    image: str, container: tuple[str, int, int], tls_dir: Path
) -> None:
    name, port, probe_port = container
    inspect = json.loads(podman("image", "inspect", image).stdout)[0]
    assert inspect["Config"]["User"] == "comparefaces"
    assert "readyz" in " ".join(inspect["Healthcheck"]["Test"]), "HEALTHCHECK dropped (build without --format docker)"
    ready_s = wait_healthy(name)
    assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
    assert podman("exec", name, "sh", "-c", "touch /opt/comparefaces/x", check=False).returncode != 0  # read-only
    outcome = PythonCore(f"127.0.0.1:{port}", ca_file=tls_dir / "ca.pem").call(AK, pair())  # over HTTPS
    assert outcome.ok and outcome.score is not None and outcome.score > 99, outcome
    assert "comparefaces_requests_total" in httpx.get(f"http://127.0.0.1:{probe_port}/metrics").text
    stopped = time.monotonic()
    podman("stop", "-t", "30", name)
    print(f"healthy {ready_s:.1f} s after start; stopped in {time.monotonic() - stopped:.1f} s")
    logs = podman("logs", name).stdout + podman("logs", name).stderr
    assert "Application shutdown complete" in logs and "Traceback" not in logs


def test_compose_cpu_service(image: str, keys_dir: Path, tls_dir: Path, tmp_path: Path) -> None:
    compose = shutil.which("podman-compose") or str(Path(sys.executable).parent / "podman-compose")
    if not Path(compose).exists():
        pytest.skip("podman-compose is not installed (pip install podman-compose)")
    override = tmp_path / "compose.test.yml"
    override.write_text(
        "services:\n  comparefaces:\n"
        f"    image: {image}\n"
        f"    environment:\n      COMPAREFACES_ACCESS_KEYS_FILE: {KEYS_IN_CONTAINER}\n"
        "      COMPAREFACES_TLS_CERT_FILE: /etc/comparefaces/tls/server.pem\n"
        "      COMPAREFACES_TLS_KEY_FILE: /etc/comparefaces/tls/server-key.pem\n"
        f"    volumes:\n      - {keys_dir}:/etc/comparefaces/keys:ro\n      - {tls_dir}:/etc/comparefaces/tls:ro\n"
    )
    port, project = free_port(), f"cftest{os.getpid()}"
    env = {**ENV, "HOST_PORT": str(port), "PUBLISH": "127.0.0.1"}
    command = [compose, "-p", project, "-f", str(REPO / "docker-compose.yml"), "-f", str(override)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=300, cwd=REPO)

    gpu = subprocess.run(
        [compose, "--profile", "gpu", "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=REPO,
    )
    assert gpu.returncode == 0 and "EXTRAS=gpu" in gpu.stdout, gpu.stderr  # the GPU service parses (not built here)
    up = run("up", "-d", "--no-build", "comparefaces")
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        name = podman(
            "ps", "--filter", f"label=io.podman.compose.project={project}", "--format", "{{.Names}}"
        ).stdout.split()[0]
        wait_healthy(name)
        assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
        outcome = PythonCore(f"127.0.0.1:{port}", ca_file=tls_dir / "ca.pem").call(AK, pair())
        assert outcome.ok and outcome.score is not None and outcome.score > 99, outcome
    finally:
        run("down", "-t", "5")
