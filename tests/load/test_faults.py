"""Bounded work and faults, on a real server: admission control, slow and dead image hosts, a
stuck inference. Each fault costs the requests it touches, never the server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from app.comparison import ComparisonService, EncodedImage
from app.engine.build import load_engine
from app.engine.engine import FaceEngine
from app.engine.types import Comparison
from app.metrics import Metrics
from app.settings import Settings
from tests.conftest import compare
from tests.helpers.image_host import ImageHost, image_host
from tests.helpers.images import b64
from tests.helpers.server import run_server
from tests.hostile.hostile_images import face_jpeg

FACE = face_jpeg()
STALL_MARK = b"\xff\xd9STALL"  # trailing bytes after the JPEG's end: decoders ignore them


@dataclass
class Rig:
    url: str
    images: str
    host: ImageHost
    release_stall: threading.Event


class StallingComparisons(ComparisonService):
    """The real service, except that a source image ending with STALL_MARK hangs its inference thread
    until ``release`` is set (fault injection: a stuck inference cannot be caused on purpose otherwise)."""

    release: threading.Event

    async def compare(self, source: EncodedImage, target: EncodedImage) -> Comparison:
        if not source[0].endswith(STALL_MARK):
            return await super().compare(source, target)

        def stalled(engine: FaceEngine) -> Comparison:
            self.release.wait(30)
            return engine.compare(*engine.embed_pair(*source, *target))

        return await self.run(stalled)


def stalling_comparisons(release: threading.Event) -> Callable[[Settings, Metrics], ComparisonService]:
    def factory(settings: Settings, metrics: Metrics) -> ComparisonService:
        service = StallingComparisons.start(load_engine(settings), settings, metrics)
        service.release = release
        return service

    return factory


@pytest.fixture(scope="module")
def rig(server_settings: Settings) -> Iterator[Rig]:
    release = threading.Event()
    settings = server_settings.model_copy(
        update={
            "max_in_flight": 3,
            "inference_workers": 2,
            "fetch_total_timeout_s": 2.0,
            "fetch_read_timeout_s": 2.0,
            "inference_timeout_s": 1.5,
        }
    )
    with (
        image_host(FACE) as (images, host),
        run_server(settings, comparisons_factory=stalling_comparisons(release)) as url,
    ):
        yield Rig(url, images, host, release)
        release.set()


def pair(source: str, target: str = b64(FACE)) -> dict[str, str]:
    return {
        "SourceImageType": "FacePic",
        "SourceImageValue": source,
        "TargetImageType": "FacePic",
        "TargetImageValue": target,
    }


def timed(client: httpx.Client, params: dict[str, str]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = compare(client, params)
    return response, time.monotonic() - started


def test_admission_bounds_running_and_queued_work(rig: Rig) -> None:
    """max_in_flight=3: three requests whose inference hangs hold the three slots (two running, one
    queued); seven more are refused at once with Throttling.User and x-acs-retry-after, not queued."""
    with httpx.Client(base_url=rig.url, timeout=30) as client, ThreadPoolExecutor(10) as pool:
        held = [pool.submit(timed, client, pair(b64(FACE + STALL_MARK))) for _ in range(3)]
        time.sleep(0.5)  # all three admitted: two hang in the pool, one waits for a thread
        refused = [pool.submit(timed, client, pair(b64(FACE))) for _ in range(7)]
        for future in refused:
            response, seconds = future.result()
            assert response.status_code == 429, response.text
            assert response.json()["Code"] == "Throttling.User"
            assert int(response.headers["x-acs-retry-after"]) > 0
            assert seconds < 1.0
        for future in held:
            assert future.result()[0].json()["Code"] == "ServiceUnavailable"  # the inference budget
        rig.release_stall.set()
        time.sleep(0.2)
        rig.release_stall.clear()
        assert compare(client, pair(b64(FACE))).status_code == 200  # slots given back


def test_image_fetches_hold_no_comparison_slot(rig: Rig) -> None:
    """Three requests whose images come from a slow host wait for it outside the three slots (a slot is
    taken once both images are in; none free then: Throttling.User)."""
    with httpx.Client(base_url=rig.url, timeout=30) as client, ThreadPoolExecutor(3) as pool:
        held = [pool.submit(timed, client, pair(f"{rig.images}/slow/1.5/face.jpg")) for _ in range(3)]
        for _ in range(3):
            assert rig.host.wait_started()
        response, seconds = timed(client, pair(b64(FACE)))
        assert response.status_code == 200 and seconds < 1.5
        for future in held:
            response, seconds = future.result()
            assert response.status_code == 200, response.text
            assert seconds >= 1.4


def test_slow_and_dead_image_hosts_cost_one_request(rig: Rig) -> None:
    with httpx.Client(base_url=rig.url, timeout=30) as client, ThreadPoolExecutor(2) as pool:
        dead = pool.submit(timed, client, pair(f"{rig.images}/dead/face.jpg"))
        drip = pool.submit(timed, client, pair(f"{rig.images}/drip/face.jpg"))
        assert rig.host.wait_started() and rig.host.wait_started()
        response, seconds = timed(client, pair(b64(FACE)))  # the third slot still serves at once
        assert response.status_code == 200
        assert seconds < 1.5
        for future in (dead, drip):
            response, seconds = future.result()
            assert response.status_code == 400
            assert response.json()["Code"] == "InvalidParam.ImageNotFound"
            assert 1.8 < seconds < 6  # the fetch deadline (2 s), not the host, decides
        assert compare(client, pair(b64(FACE))).status_code == 200


def test_a_failing_image_cancels_the_other_fetch(rig: Rig) -> None:
    """The target is refused at once, so the slow source fetch is cancelled with the request:
    no fetch outlives its request (and its admission slot)."""
    with httpx.Client(base_url=rig.url, timeout=30) as client:
        response, seconds = timed(client, pair(f"{rig.images}/slow/1.5/face.jpg", "base64://%%%"))
        assert response.json()["Code"] == "InvalidParam.ImageValuePatternError"
        assert seconds < 1.0
        time.sleep(0.2)
        assert not rig.host.wait_started(0.1)  # the address was refused before any fetch began


def test_stuck_inference_costs_one_request(rig: Rig) -> None:
    stuck_image = b64(FACE + STALL_MARK)
    with httpx.Client(base_url=rig.url, timeout=30) as client, ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(timed, client, pair(stuck_image))
        time.sleep(0.3)
        for _ in range(3):  # the other inference worker keeps serving meanwhile
            response, seconds = timed(client, pair(b64(FACE)))
            assert response.status_code == 200
            assert seconds < 1.5
        response, seconds = stuck.result()
        assert response.status_code == 503, response.text
        assert response.json()["Code"] == "ServiceUnavailable"
        assert "x-acs-retry-after" not in response.headers
        assert 1.4 < seconds < 4  # the inference budget (1.5 s)
        rig.release_stall.set()
        time.sleep(0.2)
        rig.release_stall.clear()
        assert compare(client, pair(b64(FACE))).status_code == 200
