from __future__ import annotations

import os

# The SDKs' credential chains must never reach for the ECS metadata service.
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")


def pytest_configure(config: object) -> None:
    config.addinivalue_line(  # type: ignore[attr-defined]
        "markers", "scale: replicas behind HAProxy with Redis, Prometheus (real processes; run by .ci/run)"
    )
