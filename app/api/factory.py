"""The application factory. The lifespan owns the engine, the inference pool and the loaders."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from app.api.access import Authenticator, OpenAccess
from app.api.compare import compare_faces
from app.api.openapi import COMPARE_FACES_OPERATION
from app.api.request import RpcRequest, build_rpc_request, format_from_query
from app.api.responses import error_response, success_response
from app.demo.routes import install_demo
from app.engine.engine import FaceEngine
from app.engine.packs import load_engine
from app.engine.runtime import usable_cores
from app.errors import (
    ActionNotFound,
    ApiError,
    ImageValuePatternError,
    InternalError,
    InvalidVersion,
    MissingParameter,
    Throttled,
)
from app.faults import FaultInjector, create_fault_injector
from app.images.http_fetch import UrlFetcher
from app.images.loader import ImageLoader
from app.images.object_store import create_object_store
from app.oss.service import DESCRIBE_OSS_UPLOAD_TOKEN, OssUploads, create_uploads
from app.settings import Settings

log = logging.getLogger("comparefaces")
access_log = logging.getLogger("comparefaces.access")

API_VERSION = "2019-03-07"
RETRY_AFTER_MS = "1000"
LOGGABLE_ACTION = re.compile(r"[A-Za-z]{1,64}")  # anything else is logged as "-" (no request data in logs)


@dataclass
class Services:
    settings: Settings
    engine: FaceEngine
    executor: ThreadPoolExecutor
    loader: ImageLoader
    authenticator: Authenticator
    admission: asyncio.Semaphore
    open_requests: asyncio.Semaphore
    uploads: OssUploads | None  # None: COMPAREFACES_OSS_UPLOADS=false
    faults: FaultInjector | None = None


def create_authenticator(settings: Settings) -> Authenticator:
    if settings.access_keys_file is None:
        log.warning(
            "NO ACCESS KEYS CONFIGURED: serving every request unsigned (development mode). "
            "Set COMPAREFACES_ACCESS_KEYS_FILE to require signed requests."
        )
        return OpenAccess()
    from app.auth.authenticator import create_signature_authenticator

    return create_signature_authenticator(settings)


def create_app(
    settings: Settings | None = None, *, engine_factory: Callable[[Settings], FaceEngine] = load_engine
) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        faults = create_fault_injector(settings)  # refuses a half-configured one before the models load
        engine = engine_factory(settings)
        engine.warm_up()
        workers = settings.inference_workers or usable_cores()
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
        store = create_object_store(settings)
        loader = ImageLoader(UrlFetcher(settings), store, settings.max_image_bytes)
        uploads = create_uploads(settings, store)
        services = Services(
            settings=settings,
            engine=engine,
            executor=executor,
            loader=loader,
            authenticator=create_authenticator(settings),
            admission=asyncio.Semaphore(settings.max_in_flight),
            open_requests=asyncio.Semaphore(settings.max_open_requests),
            uploads=uploads,
            faults=faults,
        )
        app.state.services = services
        if uploads is not None:
            uploads.start()  # the retention sweep
        log.info("ready: model %s, %d inference workers", engine.model_id, workers)
        try:
            yield
        finally:
            if uploads is not None:
                await uploads.close()
            await loader.close()
            await services.authenticator.close()
            executor.shutdown(wait=True)
            engine.close()

    app = FastAPI(title="comparefaces", version=API_VERSION, lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"status": "alive"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        services: Services = request.app.state.services
        body = {"status": "ready", "model": services.engine.model_id, "signatures": "required"}
        if services.authenticator.open_mode:
            body["signatures"] = "NOT CHECKED: no access keys configured (development mode)"
        if services.faults is not None:
            body["faults"] = services.faults.describe()
        return JSONResponse(body)

    @app.post("/", openapi_extra=COMPARE_FACES_OPERATION, response_class=Response, summary="CompareFaces")
    async def compare_faces_rpc(request: Request) -> Response:
        return await handle_rpc(request, request.app.state.services)

    install_demo(app, not_found=handle_rpc, read_body=read_body)  # before the catch-all route

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

    @app.api_route("/{path:path}", methods=methods, include_in_schema=False)
    async def rpc(request: Request) -> Response:
        services: Services = request.app.state.services
        if services.uploads is not None and services.uploads.claims(request):
            return await services.uploads.handle(request)  # OSS PutObject: app/oss/service.py
        return await handle_rpc(request, services)

    return app


async def read_body(request: Request, limit: int, timeout_s: float | None = None) -> bytes:
    """The raw body (chunked or not), refused past ``limit`` bytes without reading the rest, or
    when it has not all arrived within ``timeout_s`` (slow-drip senders), or the client left."""
    close = {"connection": "close"}  # the rest of the body is not wanted: drop the connection after the answer
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ImageValuePatternError(headers=close)

    async def receive() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ImageValuePatternError(headers=close)
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(receive(), timeout_s)
    except (asyncio.TimeoutError, ClientDisconnect) as exc:
        raise ImageValuePatternError(headers=close) from exc


async def dispatch(rpc: RpcRequest, services: Services) -> dict[str, object]:
    if rpc.method != "POST" or rpc.path != "/":
        raise ActionNotFound()
    if not rpc.action:
        raise MissingParameter("Action")
    if not rpc.version:
        raise MissingParameter("Version")
    if rpc.version != API_VERSION:
        raise InvalidVersion()
    if rpc.action == DESCRIBE_OSS_UPLOAD_TOKEN and services.uploads is not None:
        return services.uploads.describe_token(rpc.headers.get("host", ""))
    if rpc.action != "CompareFaces":
        raise ActionNotFound()
    if services.faults is not None:
        injected = await services.faults.inject(rpc, services.engine.calibration)
        if injected is not None:
            return injected
    if services.admission.locked():
        raise Throttled(headers={"x-acs-retry-after": RETRY_AFTER_MS})
    async with services.admission:
        return await compare_faces(
            rpc.params,
            services.engine,
            services.loader,
            services.executor,
            inference_timeout_s=services.settings.inference_timeout_s,
        )


async def handle_rpc(request: Request, services: Services) -> Response:
    request_id = str(uuid.uuid4()).upper()
    started = time.perf_counter()
    xml = format_from_query(request.url.query).lower() == "xml"
    key_id: str | None = None
    action = request.headers.get("x-acs-action", "")
    settings = services.settings
    try:
        if services.open_requests.locked():  # bounded buffering: past it, the body is not read
            raise Throttled(headers={"x-acs-retry-after": RETRY_AFTER_MS})
        async with services.open_requests:
            body = await read_body(request, settings.max_body_bytes, settings.body_read_timeout_s)
            rpc = build_rpc_request(request, body)
            xml, action = rpc.wants_xml, rpc.action
            key_id = await services.authenticator.authenticate(rpc)
            data = await dispatch(rpc, services)
        response = success_response(rpc.action, data, request_id=request_id, xml=xml)
    except ApiError as error:
        response = error_response(error, request_id=request_id, xml=xml)
    except Exception as error:
        # The traceback without the exception's message: messages may quote request data.
        frames = "".join(traceback.format_tb(error.__traceback__))
        log.error("request %s failed: %s\n%s", request_id, type(error).__name__, frames)
        response = error_response(InternalError(), request_id=request_id, xml=xml)
    access_log.info(
        "request_id=%s key_id=%s action=%s status=%d latency_ms=%.1f",
        request_id,
        key_id or "-",
        action if LOGGABLE_ACTION.fullmatch(action) else "-",
        response.status_code,
        (time.perf_counter() - started) * 1000,
    )
    return response
