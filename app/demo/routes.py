"""``GET /demo``: a page to look at a comparison, and the endpoint that analyses one for it.

On in open mode only unless ``COMPAREFACES_DEMO=on``; when off, its paths answer exactly as any
unknown path does (``InvalidAction.NotFound``). The analysis endpoint takes a CompareFaces request
as the API does and checks it with the API's own authenticator first (signature, key, action,
timestamp, nonce), so the demo never compares anything the API would refuse to; it runs under the
same body, admission and inference limits. It analyses uploaded files only (``base64://``): it
answers aligned face crops, which for an ``oss://`` or URL address would hand out the face in any
object a key can name. Browsers of other names or pages are refused (``app/local_surfaces.py``).
Photos are neither stored nor logged, and are not sent back (the page has them).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from app.api.intake import admitted, throttled
from app.demo.analysis import analysis_json, analyze
from app.engine.calibration import REPORTED_FARS
from app.engine.engine import FaceEngine
from app.errors import ActionNotFound, ApiError, ImageValuePatternError, InternalError, InvalidVersion, MissingParameter
from app.images.addresses import is_inline
from app.local_surfaces import browser_refusal
from app.logs import log_unexpected
from app.wire.compare_faces import image_values, parse_image_types
from app.wire.request import RpcRequest
from app.wire.responses import error_response

if TYPE_CHECKING:
    from app.api.factory import Services

log = logging.getLogger("comparefaces.demo")

STATIC_TYPES = {"index.html": "text/html; charset=utf-8", "demo.js": "text/javascript", "demo.css": "text/css"}
# Nothing but this server: no CDN, no inline script, no third-party request from the page.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

Fallback = Callable[[Request, "Services"], Awaitable[Response]]
Receiver = Callable[[Request, "Services"], Awaitable["RpcRequest"]]


def demo_enabled(services: Services) -> bool:
    mode = services.settings.demo
    return mode == "on" or (mode == "auto" and services.authenticator.open_mode)


def static_files() -> dict[str, bytes]:
    folder = resources.files("app.demo") / "static"
    return {name: (folder / name).read_bytes() for name in STATIC_TYPES}


def install_demo(app: FastAPI, *, not_found: Fallback, receive: Receiver) -> None:
    """Add the demo's routes (before the catch-all route). ``not_found`` answers for them when the
    demo is off (the API's handler, which answers an unknown path); ``receive`` is the API's intake
    (head checks, body shares, parsing)."""
    files = static_files()

    def asset(name: str) -> Response:
        headers = {"content-security-policy": CONTENT_SECURITY_POLICY, "x-content-type-options": "nosniff"}
        return Response(files[name], media_type=STATIC_TYPES[name], headers=headers)

    @app.get("/demo", include_in_schema=False)
    async def demo_page(request: Request) -> Response:
        services: Services = request.app.state.services
        if not demo_enabled(services):
            return await not_found(request, services)
        return browser_refusal(request, services.settings) or asset("index.html")

    @app.get("/demo/static/{name}", include_in_schema=False)
    async def demo_static(name: str, request: Request) -> Response:
        services: Services = request.app.state.services
        if not demo_enabled(services) or name not in files or name == "index.html":
            return await not_found(request, services)
        return browser_refusal(request, services.settings) or asset(name)

    @app.get("/demo/config", include_in_schema=False)
    async def demo_config(request: Request) -> Response:
        services: Services = request.app.state.services
        if not demo_enabled(services):
            return await not_found(request, services)
        refusal = browser_refusal(request, services.settings)
        if refusal is not None:
            return refusal
        faults = getattr(services, "faults", None)
        return JSONResponse(
            {
                "model": services.comparisons.model_id,
                "signatures": not services.authenticator.open_mode,
                "max_image_bytes": services.settings.max_image_bytes,
                "max_body_bytes": services.settings.max_body_bytes,
                "fars": list(REPORTED_FARS),
                "faults": faults.describe() if faults is not None else None,
            }
        )

    @app.post("/demo/analysis", include_in_schema=False)
    async def demo_analysis(request: Request) -> Response:
        services: Services = request.app.state.services
        if not demo_enabled(services):
            return await not_found(request, services)
        refusal = browser_refusal(request, services.settings)
        if refusal is not None:
            return refusal
        request_id = str(uuid.uuid4()).upper()
        started = time.perf_counter()
        try:
            body = await analysis_body(request, services, receive)
            response: Response = JSONResponse(
                body, headers={"x-acs-request-id": request_id, "cache-control": "no-store"}
            )
        except ApiError as error:
            response = error_response(error, request_id=request_id, xml=False)
        except Exception as error:
            log_unexpected(log, "demo analysis", request_id, error)
            response = error_response(InternalError(), request_id=request_id, xml=False)
        log.info(
            "demo analysis request_id=%s status=%d latency_ms=%.1f",
            request_id,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response


async def analysis_body(request: Request, services: Services, receive: Receiver) -> dict[str, Any]:
    """Check the request as the API does, then analyse both images in the inference pool."""
    if services.open_requests.locked():
        raise throttled()
    async with services.open_requests:  # received and checked exactly as the API receives and checks
        rpc = await receive(request, services)
        key_id = await services.authenticator.authenticate(rpc)  # the API's own checks: no way around them
        if rpc.action != "CompareFaces":
            raise ActionNotFound()
        from app.api.factory import API_VERSION  # here: the factory imports this module

        if not rpc.version:  # as the API: a wrong version compares nothing
            raise MissingParameter("Version")
        if rpc.version != API_VERSION:
            raise InvalidVersion()
        source_type, target_type = parse_image_types(rpc.params)
        values = image_values(rpc.params)
        if not all(is_inline(value) for value in values):  # else any key could fetch the face in any object
            raise ImageValuePatternError("The demo analyses uploaded files only (base64://), no addresses.")
        async with services.key_shares.comparing(key_id):
            source, target = await services.loader.load_pair(values)
            async with admitted(services.admission):

                def run(engine: FaceEngine) -> dict[str, Any]:
                    return analysis_json(analyze(engine, source, source_type, target, target_type), engine.model_id)

                return await services.comparisons.run(run)
