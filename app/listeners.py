"""What ``comparefaces serve`` listens on: the API port (HTTPS when a certificate is set), and with
``PROBE_PORT`` a second, plain-HTTP port that answers only the probes and ``/metrics``.

With the probe port, ``/metrics`` leaves the API port altogether (the path as the router sees it,
percent-decoded: ``/%6Detrics`` is ``/metrics``), so no proxy rule has to keep it off the public side.
Both ports are served by one app in one event loop; the probe port opens once the API is up and
closes after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import uvicorn

from app.errors import ActionNotFound
from app.wire.responses import error_response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def without_metrics(app: App) -> App:
    """The API app, answering ``/metrics`` as any path it does not serve."""

    async def api(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            response = error_response(ActionNotFound(), request_id=str(uuid.uuid4()).upper(), xml=False)
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return api


def probes_only(app: App) -> App:
    """The same app, answering only ``PROBE_PATHS`` (404 for anything else)."""

    async def probes(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in PROBE_PATHS:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"Not Found"})
            return
        await app(scope, receive, send)

    return probes


class ProbeServer(uvicorn.Server):
    """Leaves the signals to the API server, which tells it when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve(api: uvicorn.Config, probes: uvicorn.Config | None) -> bool:
    """Run until the API server stops (SIGTERM, SIGINT); whether it started."""
    server = uvicorn.Server(api)
    if probes is None:
        server.run()
        return server.started

    async def both() -> None:
        api_task = asyncio.create_task(server.serve())
        while not server.started and not api_task.done():
            await asyncio.sleep(0.02)
        if not server.started:
            await api_task
            return
        probe_server = ProbeServer(probes)
        probe_task = asyncio.create_task(probe_server.serve())
        await api_task
        probe_server.should_exit = True
        await probe_task

    asyncio.run(both())
    return server.started
