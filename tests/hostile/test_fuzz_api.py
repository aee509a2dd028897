"""Schemathesis against the live server, from the server's own OpenAPI description of ``POST /``.

Positive and negative cases (values outside the enums, missing and extra fields, odd types)
must never get a 5xx, and every answer must be one the description declares: status, content
type and body schema. Image URLs the generator makes up are pointed at a loopback image host
(never a real DNS lookup); the budget is bounded and derandomized so CI is repeatable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers.image_host import image_host
from tests.hostile.hostile_images import face_jpeg

SCALE = int(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=50 pytest tests/hostile: a longer campaign
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def local_images() -> Iterator[str]:
    with image_host(face_jpeg()) as (base_url, _):
        yield base_url


@pytest.fixture(scope="module")
def compare_faces_operation(server: str) -> schemathesis.APIOperation:
    return schemathesis.openapi.from_url(f"{server}/openapi.json")["/"]["POST"]


def loopback_only(value: Any, images: str) -> Any:
    """Any http(s) address the generator made up now points at the loopback image host."""
    if isinstance(value, str) and value.strip()[:8].lower().startswith(("http://", "https://")):
        return f"{images}/face.jpg" if len(value) % 2 else f"{images}/missing"
    if isinstance(value, dict):
        return {key: loopback_only(item, images) for key, item in value.items()}
    if isinstance(value, list):
        return [loopback_only(item, images) for item in value]
    return value


# The strategies are driven with hypothesis directly: schemathesis's pytest plugin
# (``schemathesis.pytest.from_fixture``) does not work with pytest 9 yet.
@pytest.mark.parametrize(
    ("mode", "examples"),
    [(GenerationMode.POSITIVE, 80 * SCALE), (GenerationMode.NEGATIVE, 120 * SCALE)],
    ids=["positive", "negative"],
)
def test_api_fuzz(
    compare_faces_operation: schemathesis.APIOperation, local_images: str, mode: GenerationMode, examples: int
) -> None:
    seen: dict[int, int] = {}

    @settings(
        max_examples=examples, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=compare_faces_operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.body = loopback_only(case.body, local_images)
        case.query = loopback_only(case.query, local_images)
        if mode is GenerationMode.POSITIVE:  # both are optional: make most positive cases reach the images
            case.query = {"Action": "CompareFaces", "Version": "2019-03-07", **(case.query or {})}
        response = case.call(timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)

    run()
    assert sum(seen.values()) >= examples // 2
    assert all(status < 500 for status in seen)
