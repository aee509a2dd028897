"""The application factory. The lifespan owns the comparison service (engine and its threads) and the loaders."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from app.api.compare import compare_faces
from app.api.intake import CLOSE, BodyReceiver, BodyRefused, BodyShares, KeyShares, admitted, body_shares, throttled
from app.auth.access import Authenticator, OpenAccess
from app.comparison import Comparisons, ComparisonService
from app.demo.routes import install_demo
from app.engine.build import load_engine
from app.errors import (
    ActionNotFound,
    ApiError,
    ImageValuePatternError,
    InternalError,
    InvalidVersion,
    MissingParameter,
)
from app.faults import FaultInjector, create_fault_injector
from app.images.http_fetch import UrlFetcher
from app.images.loader import ImageLoader
from app.images.object_store import create_object_store
from app.local_surfaces import browser_refusal
from app.logs import log_access, log_unexpected
from app.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from app.metrics import SUCCESS_CODE, CountedAuthenticator, Metrics
from app.oss.service import DESCRIBE_OSS_UPLOAD_TOKEN, OssUploads, create_uploads
from app.settings import Settings
from app.wire.compare_faces import NO_PAIR_TYPE, requested_pair_type
from app.wire.openapi import COMPARE_FACES_OPERATION
from app.wire.request import RpcRequest, build_rpc_request
from app.wire.responses import error_response, host_id, success_response

log = logging.getLogger("comparefaces")
access_log = logging.getLogger("comparefaces.access")

API_VERSION = "2019-03-07"
OFF_LOOP_BYTES = 64 * 1024
LOGGABLE_ACTION = re.compile(r"[A-Za-z]{1,64}")  # anything else is logged as "-" (no request data in logs)


@dataclass
class Services:
    settings: Settings
    comparisons: Comparisons
    loader: ImageLoader
    authenticator: Authenticator
    admission: asyncio.Semaphore
    open_requests: asyncio.Semaphore
    receiver: BodyReceiver
    body_shares: BodyShares
    key_shares: KeyShares
    uploads: OssUploads | None  # None: COMPAREFACES_OSS_UPLOADS=false
    metrics: Metrics
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


def start_comparisons(settings: Settings, metrics: Metrics) -> Comparisons:
    return ComparisonService.start(load_engine(settings), settings, metrics)


def create_app(
    settings: Settings | None = None,
    *,
    comparisons_factory: Callable[[Settings, Metrics], Comparisons] = start_comparisons,
) -> FastAPI:
    """The server. ``comparisons_factory`` builds the comparison service in the lifespan (tests
    pass a fake; ``comparefaces serve`` one around the engine it loaded before binding the port)."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        faults = create_fault_injector(settings)  # refuses a half-configured one before the models load
        comparisons = comparisons_factory(settings, metrics)
        metrics.describe_engine(comparisons.model_id, comparisons.calibration, settings.execution_provider)
        metrics.inference_workers.set(comparisons.workers)
        metrics.in_flight_limit.set(settings.max_in_flight)
        store = create_object_store(settings)
        loader = ImageLoader(UrlFetcher(settings), store, settings.max_image_bytes)
        uploads = create_uploads(settings, store)
        authenticator = CountedAuthenticator(create_authenticator(settings), metrics)
        await authenticator.start()  # refuses an evicting Redis
        services = Services(
            settings=settings,
            comparisons=comparisons,
            loader=loader,
            authenticator=authenticator,
            admission=asyncio.Semaphore(settings.max_in_flight),
            open_requests=asyncio.Semaphore(settings.max_open_requests),
            receiver=BodyReceiver(
                grace_s=settings.slow_client_grace_s,
                min_rate=settings.slow_client_min_rate,
                drain_bytes=settings.body_drain_bytes,
            ),
            body_shares=body_shares(settings, authenticator.open_mode),
            key_shares=KeyShares(settings.max_in_flight_per_key or max(1, settings.max_in_flight * 3 // 4)),
            faults=faults,
            uploads=uploads,
            metrics=metrics,
        )
        app.state.services = services
        if uploads is not None:
            await uploads.start()  # counts what the store holds, starts the retention sweep
        log.info("ready: model %s, %d inference workers", comparisons.model_id, comparisons.workers)
        try:
            yield
        finally:
            if uploads is not None:
                await uploads.close()
            await loader.close()
            await services.authenticator.close()
            comparisons.close()

    app = FastAPI(title="comparefaces", version=API_VERSION, lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"status": "alive"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        services: Services = request.app.state.services
        body = {"status": "ready", "model": services.comparisons.model_id, "signatures": "required"}
        if services.authenticator.open_mode:
            body["signatures"] = "NOT CHECKED: no access keys configured (development mode)"
        if services.faults is not None:
            body["faults"] = services.faults.describe()
        problem = services.authenticator.problem()
        if problem:  # out of rotation until the keys file or the nonce store is fixed: signed callers would be refused
            body.update(status="not ready", keys=problem)
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    if settings.metrics_enabled:

        @app.get("/metrics", include_in_schema=False)
        async def metrics_endpoint(request: Request) -> Response:
            refusal = browser_refusal(request, settings)  # a browser of another name or page
            return refusal or Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    @app.post("/", openapi_extra=COMPARE_FACES_OPERATION, response_class=Response, summary="CompareFaces")
    async def compare_faces_rpc(request: Request) -> Response:
        return await handle_rpc(request, request.app.state.services)

    install_demo(app, not_found=handle_rpc, receive=receive_rpc)  # before the catch-all route

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

    @app.api_route("/{path:path}", methods=methods, include_in_schema=False)
    async def rpc(request: Request) -> Response:
        services: Services = request.app.state.services
        if services.uploads is not None and services.uploads.claims(request):
            return await services.uploads.handle(request)  # OSS PutObject: app/oss/service.py
        return await handle_rpc(request, services)

    return app


async def dispatch(rpc: RpcRequest, services: Services, key_id: str | None = None) -> dict[str, object]:
    if rpc.method != "POST" or rpc.path != "/":
        raise ActionNotFound()
    if not rpc.action:
        raise MissingParameter("Action")
    if not rpc.version:
        raise MissingParameter("Version")
    if rpc.version != API_VERSION:
        raise InvalidVersion()
    if rpc.action == DESCRIBE_OSS_UPLOAD_TOKEN and services.uploads is not None:
        return services.uploads.describe_token(rpc.headers.get("host", ""), key_id, rpc.scheme)
    if rpc.action != "CompareFaces":
        raise ActionNotFound()
    if services.faults is not None:
        injected = await services.faults.inject(rpc, services.comparisons.calibration, key_id)
        if injected is not None:
            return injected
    async with services.key_shares.comparing(key_id):
        with services.metrics.comparison():
            return await compare_faces(
                rpc.params,
                services.comparisons,
                services.loader,
                metrics=services.metrics,
                compute_slot=lambda: admitted(services.admission),
            )


async def receive_rpc(request: Request, services: Services, head: RpcRequest | None = None) -> RpcRequest:
    """Check what the head shows, receive the body in the share the head earns, parse it all.
    ``head``: the head's parse when the caller has it already. The caller holds an open-request
    slot and authenticates what this returns."""
    settings = services.settings
    if head is None:
        head = await parse_rpc(request, b"")
    sender = await services.authenticator.precheck(head)
    async with services.body_shares.receiving(sender, request.client.host if request.client else ""):
        try:
            body = await services.receiver(request, settings.max_body_bytes, settings.body_read_timeout_s)
        except BodyRefused as refused:
            raise ImageValuePatternError(headers=CLOSE) from refused
    return await parse_rpc(request, body) if body else head  # images in the query: parsed once


async def parse_rpc(request: Request, body: bytes) -> RpcRequest:
    """Parsing grows with the body and the query string: a large request is parsed off the event loop."""
    if len(body) + len(request.scope.get("query_string", b"")) > OFF_LOOP_BYTES:
        return await asyncio.to_thread(build_rpc_request, request, body)
    return build_rpc_request(request, body)


async def handle_rpc(request: Request, services: Services) -> Response:
    request_id = str(uuid.uuid4()).upper()
    host = host_id(request.headers.get("host", ""))
    started = time.perf_counter()
    # The fullest parse so far (the head, then the whole request): the one source of the answer's
    # format and of the action. None only when even the query string could not be parsed (JSON).
    rpc: RpcRequest | None = None
    key_id: str | None = None
    code, pair = SUCCESS_CODE, NO_PAIR_TYPE
    try:
        rpc = await parse_rpc(request, b"")  # first: a refusal, too, answers in the Format asked for
        if services.open_requests.locked():  # bounded buffering: past it, the body is not read
            raise throttled()
        async with services.open_requests:
            rpc = await receive_rpc(request, services, rpc)
            pair = requested_pair_type(rpc.params)
            key_id = await services.authenticator.authenticate(rpc)
            data = await dispatch(rpc, services, key_id)
        response = success_response(rpc.action, data, request_id=request_id, xml=rpc.wants_xml)
    except ApiError as error:
        code = error.code
        response = error_response(error, request_id=request_id, xml=rpc is not None and rpc.wants_xml, host=host)
    except Exception as error:
        log_unexpected(log, "request", request_id, error)
        code = InternalError.code
        response = error_response(
            InternalError(), request_id=request_id, xml=rpc is not None and rpc.wants_xml, host=host
        )
    action = rpc.action if rpc is not None else ""
    seconds = time.perf_counter() - started
    services.metrics.observe_request(action, code, pair, seconds)
    log_access(
        access_log,
        request_id=request_id,
        key_id=key_id or "-",
        action=action if LOGGABLE_ACTION.fullmatch(action) else "-",
        status=response.status_code,
        code=code,
        pair_type=pair,
        latency_ms=round(seconds * 1000, 1),
    )
    return response
