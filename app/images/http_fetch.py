"""Fetching ``http(s)://`` image addresses without server-side request forgery.

Every hop (the address and each redirect, at most ``fetch_max_redirects``) is checked by
:mod:`app.images.netguard`: only http/https, no credentials in the URL, and a host that is, or
resolves to, a public address (or one the operator allows). The host name is resolved once
(``getaddrinfo`` in a thread, bounded by the connect timeout) and the connection goes to the
checked IP: the request URL names the IP, while the ``Host`` header and the TLS SNI / certificate
check keep the original host name, so no second lookup can be steered elsewhere (DNS rebinding).

Limits: connect and read timeouts, an overall deadline per fetch (``fetch_total_timeout_s``, DNS
and every hop included, so a slow-drip server costs at most that), and a byte cap read in a
stream (``Content-Length`` above it is refused before reading; otherwise reading stops as soon as
the cap is passed). Bodies are asked for and accepted only without content coding (no gzip bombs).
No cookies, no proxies from the environment, no retries.

Errors:

* ``ImageValuePatternError``: the address itself is unacceptable. Not an http/https URL,
  malformed, user:password in it, a literal forbidden host (forbidden IP in any spelling,
  ``localhost``, ``*.localhost``, metadata names; see netguard), an unsupported content coding,
  or a body over ``max_bytes``. Redirect targets are judged the same way as the first address.
* ``ImageNotFound``: the address points at nothing reachable. The name does not resolve, resolves
  only to forbidden addresses (the client cannot tell that from the URL), connection failure,
  any timeout or the overall deadline, a status other than 200, too many redirects.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address

import httpx

from app.errors import ImageNotFound, ImageValuePatternError
from app.images.netguard import AddressPolicy, IPAddress, ip_literal, is_forbidden_name
from app.settings import Settings

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ADDRESSES_TRIED = 3
MAX_PORT = 65535


@dataclass(frozen=True)
class Target:
    """One checked hop: where to connect and what to call it."""

    url: httpx.URL
    host: str  # ASCII (IDNA) host name or IP literal, for SNI and logs
    port: int
    addresses: tuple[IPAddress, ...]

    def request_url(self, address: IPAddress) -> httpx.URL:
        literal = f"[{address}]" if isinstance(address, IPv6Address) else str(address)
        return httpx.URL(f"{self.url.scheme}://{literal}:{self.port}").copy_with(raw_path=self.url.raw_path)

    @property
    def where(self) -> str:
        """Scheme, host and port only: never the path or query string in logs."""
        return f"{self.url.scheme}://{self.host}:{self.port}"


Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses ``getaddrinfo`` gives for ``host`` (the system resolver: hosts file, then DNS)."""
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            addresses.append(ip_address(str(sockaddr[0]).split("%", 1)[0]))
    return addresses


class UrlFetcher:
    """``resolver`` turns a host name into addresses (tests inject one: no name reaches the system's)."""

    def __init__(self, settings: Settings, resolver: Resolver = system_resolver) -> None:
        self._resolver = resolver
        self._policy = AddressPolicy.parse(settings.fetch_allow_networks)
        self._max_redirects = settings.fetch_max_redirects
        self._connect_timeout = settings.fetch_connect_timeout_s
        self._total_timeout = settings.fetch_total_timeout_s
        self._timeouts = {
            "connect": settings.fetch_connect_timeout_s,
            "read": settings.fetch_read_timeout_s,
            "write": settings.fetch_read_timeout_s,
            "pool": settings.fetch_connect_timeout_s,
        }
        verify: ssl.SSLContext | bool = True  # certifi's bundle
        if settings.fetch_ca_file is not None:
            verify = ssl.create_default_context(cafile=str(settings.fetch_ca_file))
        # The transport alone: no cookie jar, redirects, auth or environment proxies. No keep-alive,
        # so a TLS connection verified for one host name is never reused for another on the same IP.
        self._transport = httpx.AsyncHTTPTransport(
            verify=verify, trust_env=False, retries=0, limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def fetch(self, url: str, max_bytes: int) -> bytes:
        try:
            return await asyncio.wait_for(self._fetch(url, max_bytes), self._total_timeout)
        except asyncio.TimeoutError as exc:
            raise ImageNotFound() from exc

    async def _fetch(self, url: str, max_bytes: int) -> bytes:
        current = self._parse(url)
        for _hop in range(self._max_redirects + 1):
            target = await self._check(current)
            location = await self._get(target, max_bytes)
            if isinstance(location, bytes):
                return location
            try:
                current = current.join(location)
            except (httpx.InvalidURL, TypeError, ValueError) as exc:
                raise ImageValuePatternError() from exc
        log.info("image fetch: too many redirects from %s", target.where)
        raise ImageNotFound()

    @staticmethod
    def _parse(url: str) -> httpx.URL:
        try:
            return httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ImageValuePatternError() from exc

    async def _check(self, url: httpx.URL) -> Target:
        """Refuse unacceptable addresses; resolve allowed names to the IPs that may be connected to."""
        if url.scheme not in DEFAULT_PORTS or url.userinfo:
            raise ImageValuePatternError()
        try:
            host = url.raw_host.decode("ascii")
            literal = ip_literal(host)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ImageValuePatternError() from exc
        if not host:
            raise ImageValuePatternError()
        port = url.port or DEFAULT_PORTS[url.scheme]
        if not 0 < port <= MAX_PORT:
            raise ImageValuePatternError()
        if literal is not None:
            addresses = self._policy.permitted(host, [literal])
            if not addresses:
                reason = (
                    f"{host} is not a public address (COMPAREFACES_FETCH_ALLOW_NETWORKS can allow a private "
                    "network, never cloud metadata)"
                )
                log.info("image fetch refused: %s", reason)
                raise ImageValuePatternError(reason=reason)
            return Target(url, host, port, tuple(addresses))
        if is_forbidden_name(host) and not self._policy.name_allowed(host):
            reason = f"host name {host} is not public (allow it by name in COMPAREFACES_FETCH_ALLOW_NETWORKS)"
            log.info("image fetch refused: %s", reason)
            raise ImageValuePatternError(reason=reason)
        resolved = await self._resolve(host, port)
        addresses = self._policy.permitted(host, resolved)
        if not addresses:
            log.info(
                "image fetch refused: %s resolves to no public address "
                "(allow it with COMPAREFACES_FETCH_ALLOW_NETWORKS)",
                host,
            )
            raise ImageNotFound()
        return Target(url, host, port, tuple(addresses[:MAX_ADDRESSES_TRIED]))

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            return await asyncio.wait_for(self._resolver(host, port), self._connect_timeout)
        except (OSError, UnicodeError, OverflowError, ValueError, asyncio.TimeoutError) as exc:
            raise ImageNotFound() from exc

    async def _get(self, target: Target, max_bytes: int) -> bytes | str:
        """The body of a 200, or the Location of a redirect; tries the checked addresses in order."""
        headers = {
            "Host": target.url.netloc.decode("ascii"),
            "Accept": "image/*, */*;q=0.5",
            "Accept-Encoding": "identity",
            "User-Agent": "comparefaces-image-fetch/1",
        }
        extensions: dict[str, object] = {"timeout": self._timeouts}
        if target.url.scheme == "https":
            extensions["sni_hostname"] = target.host
        last_error: Exception | None = None
        for address in target.addresses:
            request = httpx.Request("GET", target.request_url(address), headers=headers, extensions=extensions)
            try:
                response = await self._transport.handle_async_request(request)
            except httpx.ConnectError as exc:
                last_error = exc
                continue
            except httpx.HTTPError as exc:
                raise ImageNotFound() from exc
            try:
                return await self._read(target, response, max_bytes)
            finally:
                await response.aclose()
        log.info("image fetch: cannot connect to %s", target.where)
        raise ImageNotFound() from last_error

    @staticmethod
    async def _read(target: Target, response: httpx.Response, max_bytes: int) -> bytes | str:
        if response.status_code in REDIRECT_STATUSES:
            location = response.headers.get("location")
            if not location:
                raise ImageNotFound()
            return location
        if response.status_code != 200:
            log.info("image fetch: %s answered %d", target.where, response.status_code)
            raise ImageNotFound()
        if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
            log.info("image fetch refused: %s sent a content coding (only identity is accepted)", target.where)
            raise ImageValuePatternError(reason=f"{target.where} sent a compressed (content-coded) body")
        length = response.headers.get("content-length", "")
        too_big = f"the image at {target.where} is over COMPAREFACES_MAX_IMAGE_BYTES={max_bytes}"
        if length.isdigit() and int(length) > max_bytes:
            log.info("image fetch refused: %s (Content-Length %s)", too_big, length)
            raise ImageValuePatternError(reason=too_big)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > max_bytes:
                    log.info("image fetch refused: %s", too_big)
                    raise ImageValuePatternError(reason=too_big)
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise ImageNotFound() from exc
        return b"".join(chunks)

    async def close(self) -> None:
        await self._transport.aclose()
