"""Prometheus metrics of one server process, served at ``/metrics``.

Each app owns its registry (no process-wide default registry: several apps may share a process in
tests). Every label value comes from a small set the server itself defines: an action name it
implements, an Alibaba error code, a pair type, a stage name. Never an image, an address, a key
secret or id, a nonce or a score.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from app.auth.access import Authenticator, HeadCheck
from app.engine.calibration import Calibration
from app.errors import ApiError, ServiceUnavailable, Throttled
from app.wire.request import RpcRequest

Checked = TypeVar("Checked")

CONTENT_TYPE = CONTENT_TYPE_LATEST
KNOWN_ACTIONS = frozenset({"CompareFaces"})
SUCCESS_CODE = "OK"  # the code label of answered comparisons (their body's Code is "1")
# Seconds. A comparison of two small photos takes ~10-30 ms on a CPU; fetches and queues take longer.
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def action_label(action: str) -> str:
    """Actions this server implements keep their name; anything a client made up is ``other``."""
    return action if action in KNOWN_ACTIONS else "other"


def calibration_digest(calibration: Calibration) -> str:
    """Short sha256 of the calibration's content: tells two calibrations of one model apart."""
    canonical = json.dumps(calibration.raw, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "comparefaces_requests",
            "RPC requests answered, by action, Alibaba code (OK when answered) and pair type",
            ["action", "code", "pair_type"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "comparefaces_request_duration_seconds",
            "From the request's arrival to its answer (body read, signature, images, inference)",
            ["action"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "comparefaces_stage_duration_seconds",
            "Time in one stage of a comparison: fetch (both images), decode (one image), detect, align and "
            "embed (both faces), queue (waiting for an inference thread)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "comparefaces_comparisons_in_flight",
            "Comparisons admitted: loading images, queued for or running inference",
            registry=registry,
        )
        self.in_flight_limit = Gauge(
            "comparefaces_comparisons_in_flight_limit",
            "Most comparisons admitted at once (COMPAREFACES_MAX_IN_FLIGHT); past it: Throttling.User",
            registry=registry,
        )
        self.queued = Gauge(
            "comparefaces_comparisons_queued", "Comparisons waiting for an inference thread", registry=registry
        )
        self.inference_workers = Gauge(
            "comparefaces_inference_workers", "Threads that run inference", registry=registry
        )
        self.throttled = Counter(
            "comparefaces_throttled_requests",
            "Requests answered Throttling.* because a limit was reached (open requests, comparisons, nonces)",
            registry=registry,
        )
        self.refused = Counter(
            "comparefaces_refused_requests",
            "Requests refused by the signature checks, by Alibaba code",
            ["code"],
            registry=registry,
        )
        self.nonce_store_errors = Counter(
            "comparefaces_nonce_store_errors",
            "Nonce store (Redis) failures; each fails its signed request closed (ServiceUnavailable)",
            registry=registry,
        )
        self.model = Info("comparefaces_model", "The model and calibration this process serves", registry=registry)

    def describe_engine(self, model_id: str, calibration: Calibration, execution_provider: str) -> None:
        dataset = calibration.raw.get("dataset", {})
        self.model.info(
            {
                "model": model_id,
                "calibration_sha256": calibration_digest(calibration),
                "calibration_dataset": str(dataset.get("path_name", "")),
                "calibration_created": str(calibration.raw.get("created", "")),
                "execution_provider": execution_provider,
            }
        )

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage).observe(seconds)

    def queued_changed(self, delta: int) -> None:
        self.queued.inc(delta)

    def observe_request(self, action: str, code: str, pair_type: str, seconds: float) -> None:
        action = action_label(action)
        self.requests.labels(action, code, pair_type).inc()
        self.request_seconds.labels(action).observe(seconds)
        if code.startswith("Throttling"):
            self.throttled.inc()

    @contextmanager
    def comparison(self) -> Iterator[None]:
        """The admitted comparison's lifetime (the in-flight gauge)."""
        self.in_flight.inc()
        try:
            yield
        finally:
            self.in_flight.dec()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class CountedAuthenticator:
    """An authenticator whose refusals (bad or missing signature, unknown key, replay...) are
    counted by code. A full nonce store (Throttling.User) is not a refusal, and ServiceUnavailable
    comes only from a failing nonce store (Redis), which fails the request closed: counted apart."""

    def __init__(self, inner: Authenticator, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.open_mode = inner.open_mode

    async def authenticate(self, request: RpcRequest) -> str | None:
        return await self._counted(self.inner.authenticate(request))

    async def precheck(self, head: RpcRequest) -> HeadCheck:
        return await self._counted(self.inner.precheck(head))

    async def _counted(self, verification: Awaitable[Checked]) -> Checked:
        try:
            return await verification
        except Throttled:
            raise
        except ServiceUnavailable:
            self.metrics.nonce_store_errors.inc()
            raise
        except ApiError as error:
            self.metrics.refused.labels(error.code).inc()
            raise

    def problem(self) -> str | None:
        return self.inner.problem()

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()
