"""The local-development surfaces (the demo page and its endpoints, ``/metrics``) answer browsers of
this server only: a request whose ``Host`` is a name other than ``localhost`` or ``ALLOWED_HOSTS``
(DNS rebinding: an attacker's name resolved to this address) or that a page of another origin
sent (``Origin`` or ``Sec-Fetch-Site``: a cross-site form or fetch) is refused. IP-literal hosts
are accepted: rebinding needs a name. Clients that are not browsers send neither header."""

from __future__ import annotations

import ipaddress
import uuid
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from app.errors import NoPermissionAccess
from app.settings import Settings
from app.wire.responses import error_response

SAME_SITE_FETCHES = {"same-origin", "none"}  # ``none``: typed into the address bar, a bookmark


def hostname_of(host: str) -> str:
    """``Host`` without its port, lower-case, IPv6 literals without brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def host_allowed(host: str, settings: Settings) -> bool:
    name = hostname_of(host)
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    allowed = {entry.strip().lower() for entry in settings.allowed_hosts.split(",") if entry.strip()}
    return name == "localhost" or name.endswith(".localhost") or name in allowed or name == settings.host.lower()


def browser_refusal(request: Request, settings: Settings) -> Response | None:
    """The refusal (403, ``Error.NoPermissionAccess``) of a request from a foreign name or page, else None."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    fetch_site = request.headers.get("sec-fetch-site")
    foreign_origin = origin is not None and urlsplit(origin).netloc.lower() != host.strip().lower()
    if (
        (host and not host_allowed(host, settings))
        or foreign_origin
        or (fetch_site is not None and fetch_site not in SAME_SITE_FETCHES)
    ):
        return error_response(NoPermissionAccess(), request_id=str(uuid.uuid4()).upper(), xml=False)
    return None
