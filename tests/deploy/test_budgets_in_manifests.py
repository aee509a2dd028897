"""The shipped manifests agree with the budgets they are sized from: the upload volume holds the
store-wide upload ceiling plus the bodies being written, and the bundled Redis never evicts.
Read from the files themselves (no cluster, no kubectl)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from app.settings import Settings
from tests.helpers.server import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def quantity(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMG]i)?", text).groups()  # type: ignore[union-attr]
    return int(number) * UNITS.get(unit or "", 1)


def test_the_upload_volume_holds_the_ceiling_and_the_bodies_in_flight() -> None:
    configmap = load(KUBERNETES / "base" / "configmap.yaml")[0]["data"]
    settings = Settings(**{k.removeprefix("COMPAREFACES_").lower(): v for k, v in configmap.items()})
    deployment = load(KUBERNETES / "base" / "deployment.yaml")[0]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mount = next(
        m for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] if m["name"] == "data"
    )
    assert str(settings.object_store_root).startswith(mount["mountPath"])
    needed = settings.oss_store_max_bytes + settings.max_open_requests * settings.max_image_bytes
    assert quantity(volumes["data"]["emptyDir"]["sizeLimit"]) >= needed


def test_the_bundled_redis_has_maxmemory_and_noeviction() -> None:
    redis = next(doc for doc in load(KUBERNETES / "components" / "redis" / "redis.yaml") if doc["kind"] == "Deployment")
    container = redis["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    maxmemory = args[args.index("--maxmemory") + 1]
    assert maxmemory.endswith("mb") and int(maxmemory[:-2]) * 2**20 < quantity(
        container["resources"]["limits"]["memory"]
    )
    assert int(maxmemory[:-2]) * 2**20 >= Settings().nonce_key_max_bytes  # at least one key's full share


def test_compose_gives_uploads_a_volume() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    service = compose["services"]["comparefaces"]
    assert service["read_only"] and "uploads:/var/lib/comparefaces/oss" in service["volumes"]
    assert "uploads" in compose["volumes"]
