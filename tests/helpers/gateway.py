"""The gateway in-process: the real app (routing, body receipt, signatures, parameters, image
loading, error rendering) driven through ASGI by Starlette's TestClient, with a stand-in comparison
service instead of the models. No uvicorn, no socket, no model file: protocol tests run in
milliseconds. What needs a socket (HTTP/1.1 framing, slow clients, the official SDKs) or real faces
stays on the real server (``tests/helpers/server.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TypeVar

from starlette.testclient import TestClient

from app.api.factory import create_app
from app.comparison import EncodedImage
from app.engine.calibration import Calibration
from app.engine.engine import FaceEngine
from app.engine.types import Comparison, pair_type
from app.images.decode import decode_image
from app.metrics import Metrics
from app.settings import Settings

Result = TypeVar("Result")
DEFAULT_CALIBRATION = Path(str(resources.files("app") / "calibrations" / "default.json"))


class StandInComparisons:
    """Decodes both images as the engine does (so undecodable ones are refused alike), then answers
    ``cosine`` through the shipped default calibration. ``compared`` counts the pairs it was given."""

    model_id = "stand-in"
    workers = 1

    def __init__(self, cosine: float = 0.75, max_image_pixels: int = 40_000_000) -> None:
        self.cosine = cosine
        self.max_image_pixels = max_image_pixels
        self.calibration = Calibration.load(DEFAULT_CALIBRATION)
        self.compared = 0

    async def compare(self, source: EncodedImage, target: EncodedImage) -> Comparison:
        for data, _ in (source, target):
            decode_image(data, max_pixels=self.max_image_pixels)
        self.compared += 1
        kind = pair_type(source[1], target[1])
        return Comparison(
            score=self.calibration.score(self.cosine),
            cosine=self.cosine,
            thresholds=self.calibration.thresholds(kind),
            pair_type=kind,
        )

    async def run(self, job: Callable[[FaceEngine], Result]) -> Result:
        raise NotImplementedError("the stand-in has no engine to run jobs on")

    def close(self) -> None:
        return None


@contextmanager
def gateway(settings: Settings, comparisons: StandInComparisons | None = None) -> Iterator[TestClient]:
    """A client of the app built by ``create_app(settings)`` around ``comparisons``, lifespan run."""
    stand_in = comparisons or StandInComparisons(max_image_pixels=settings.max_image_pixels)

    def factory(_: Settings, __: Metrics) -> StandInComparisons:
        return stand_in

    app = create_app(settings, comparisons_factory=factory)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        yield client
