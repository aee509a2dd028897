"""URL fetching against real HTTP(S) servers on 127.0.0.1: allowances, redirects, limits, refusals.

Every refused spelling is checked to cause no connection at all to the live server it would reach.
Only loopback is ever contacted: forbidden non-loopback addresses are refused before any connect,
and host names used here come from an injected resolver (``HOSTS``): no name reaches the system's.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app.errors import ImageNotFound, ImageValuePatternError
from app.images.http_fetch import UrlFetcher
from app.images.netguard import IPAddress
from app.settings import Settings

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
MAX = 64 * 1024
ALLOW_LOOPBACK = "127.0.0.1/32"


@dataclass
class Seen:
    connections: int = 0
    hosts: list[str] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    seen: Seen

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.seen.connections += 1
        return True


class Handler(BaseHTTPRequestHandler):
    server: CountingServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen.hosts.append(self.headers.get("Host", ""))
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/img":
            self._send(200, IMAGE, {"Content-Type": "image/png"})
        elif path.startswith("/hops/"):
            left = int(path.rsplit("/", 1)[1])
            self._send(302, headers={"Location": "/img" if left <= 1 else f"/hops/{left - 1}"})
        elif path == "/to":
            self._send(int(query.get("status", ["302"])[0]), headers={"Location": query["loc"][0]})
        elif path == "/no-location":
            self._send(302)
        elif path == "/missing":
            self._send(404, b"not here")
        elif path == "/big":
            self._send(200, b"x" * (MAX + 1))
        elif path in ("/endless", "/drip", "/stall"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._stream(path)
        elif path == "/gzip":
            self._send(200, b"\x1f\x8b" + bytes(30), {"Content-Encoding": "gzip"})
        else:
            self._send(500)

    def _stream(self, path: str) -> None:
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                if path == "/endless":
                    self.wfile.write(b"10000\r\n" + b"y" * 0x10000 + b"\r\n")
                elif path == "/drip":
                    self.wfile.write(b"1\r\nz\r\n")
                    self.wfile.flush()
                    time.sleep(0.1)
                else:
                    time.sleep(0.1)
        except OSError:
            pass
        self.close_connection = True


@dataclass
class LiveServer:
    port: int
    seen: Seen
    scheme: str = "http"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


@contextmanager
def serve(tls: ssl.SSLContext | None = None) -> Iterator[LiveServer]:
    httpd = CountingServer(("127.0.0.1", 0), Handler)
    httpd.seen = Seen()
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: httpd.seen.sni.append(name)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield LiveServer(httpd.server_address[1], httpd.seen, "https" if tls else "http")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    with serve() as server:
        yield server


HOSTS = {"localhost": ["127.0.0.1"], "images.test": ["127.0.0.1"]}


async def hosts_resolver(host: str, port: int) -> list[IPAddress]:
    """The test's own name table; any other name does not exist (as a DNS NXDOMAIN)."""
    if host.lower().rstrip(".") not in HOSTS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return [ip_address(a) for a in HOSTS[host.lower().rstrip(".")]]


def fetch(url: str, allow: str = "", max_bytes: int = MAX, **settings: Any) -> bytes:
    options: dict[str, Any] = {
        "fetch_connect_timeout_s": 1.0,
        "fetch_read_timeout_s": 1.0,
        "fetch_total_timeout_s": 3.0,
        **settings,
    }
    fetcher = UrlFetcher(Settings(fetch_allow_networks=allow, **options), resolver=hosts_resolver)

    async def run() -> bytes:
        try:
            return await fetcher.fetch(url, max_bytes)
        finally:
            await fetcher.close()

    return asyncio.run(run())


def loopback_alias() -> str:
    """A host name other than localhost that the test resolver maps to 127.0.0.1."""
    return "images.test"


# Allowed fetches


def test_allowed_network_fetches(live: LiveServer) -> None:
    assert fetch(live.url("/img"), ALLOW_LOOPBACK) == IMAGE
    assert live.seen.hosts[-1] == f"127.0.0.1:{live.port}"


def test_without_allowance_loopback_is_refused_before_connecting(live: LiveServer) -> None:
    before = live.seen.connections
    with pytest.raises(ImageValuePatternError):
        fetch(live.url("/img"))
    assert live.seen.connections == before


def test_allowed_host_name_is_pinned_and_keeps_its_host_header(live: LiveServer) -> None:
    alias = loopback_alias()
    assert fetch(live.url("/img", alias), alias) == IMAGE
    assert live.seen.hosts[-1] == f"{alias}:{live.port}"
    assert fetch(live.url("/img", "localhost"), "localhost") == IMAGE
    # An allowed network covers names that resolve into it.
    assert fetch(live.url("/img", alias), ALLOW_LOOPBACK) == IMAGE


def test_name_resolving_to_a_forbidden_address_is_not_found(live: LiveServer) -> None:
    alias = loopback_alias()
    before = live.seen.connections
    with pytest.raises(ImageNotFound):
        fetch(live.url("/img", alias))
    assert live.seen.connections == before


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        # Numeric spellings of 127.0.0.1 are refused even where 127.0.0.1 itself is allowed.
        (ALLOW_LOOPBACK, "http://2130706433:{port}/img"),
        (ALLOW_LOOPBACK, "http://0x7f.1:{port}/img"),
        (ALLOW_LOOPBACK, "http://0x7f000001:{port}/img"),
        (ALLOW_LOOPBACK, "http://017700000001:{port}/img"),
        (ALLOW_LOOPBACK, "http://0177.0.0.1:{port}/img"),
        (ALLOW_LOOPBACK, "http://127.1:{port}/img"),
        (ALLOW_LOOPBACK, "http://127.000.000.001:{port}/img"),
        (ALLOW_LOOPBACK, "http://user:secret@127.0.0.1:{port}/img"),
        (ALLOW_LOOPBACK, "http://user@127.0.0.1:{port}/img"),
        (ALLOW_LOOPBACK, "ftp://127.0.0.1:{port}/img"),
        (ALLOW_LOOPBACK, "file:///etc/passwd"),
        (ALLOW_LOOPBACK, "http://:{port}/img"),
        (ALLOW_LOOPBACK, "http://0.0.0.0:{port}/img"),
        (ALLOW_LOOPBACK, "http://[::]:{port}/img"),
        (ALLOW_LOOPBACK, "http://localhost:{port}/img"),
        (ALLOW_LOOPBACK, "http://LocalHost.:{port}/img"),
        (ALLOW_LOOPBACK, "http://images.localhost:{port}/img"),
        ("", "http://127.0.0.1:{port}/img"),
        ("", "http://127.0.0.2:{port}/img"),
        ("", "http://[::1]:{port}/img"),
        ("", "http://[::ffff:127.0.0.1]:{port}/img"),
        ("", "http://[::ffff:7f00:1]:{port}/img"),
        ("", "http://[::127.0.0.1]:{port}/img"),
        ("", "http://[2002:7f00:1::1]:{port}/img"),
        ("", "https://127.0.0.1:{port}/img"),
        # Never reached (refused before any connect), listed for the error code.
        ("", "http://169.254.169.254/latest/meta-data/"),
        ("", "http://[fd00:ec2::254]/latest/meta-data/"),
        ("", "http://100.100.100.200/latest/meta-data/"),
        ("", "http://metadata.google.internal/computeMetadata/v1/"),
        ("", "http://10.0.0.1/img"),
        ("", "http://192.168.0.1/img"),
        ("", "http://[fe80::1%25eth0]/img"),
        ("0.0.0.0/0", "http://169.254.169.254/latest/meta-data/"),
    ],
)
def test_refused_without_connecting(live: LiveServer, allow: str, url: str) -> None:
    before = live.seen.connections
    with pytest.raises(ImageValuePatternError):
        fetch(url.format(port=live.port), allow)
    assert live.seen.connections == before


# Redirects


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_redirect_hops_within_the_limit(live: LiveServer, hops: int) -> None:
    assert fetch(live.url(f"/hops/{hops}"), ALLOW_LOOPBACK) == IMAGE


def test_too_many_redirects(live: LiveServer) -> None:
    with pytest.raises(ImageNotFound):
        fetch(live.url("/hops/4"), ALLOW_LOOPBACK)
    assert fetch(live.url("/hops/4"), ALLOW_LOOPBACK, fetch_max_redirects=4) == IMAGE


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_redirect_statuses_and_absolute_locations(live: LiveServer, status: int) -> None:
    location = live.url("/img")
    assert fetch(live.url(f"/to?status={status}&loc={location}"), ALLOW_LOOPBACK) == IMAGE


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/img",
        "http://localhost:{port}/img",
        "http://0x7f.1:{port}/img",
        "http://user:pass@127.0.0.1:{port}/img",
        "file:///etc/passwd",
        "gopher://127.0.0.1:{port}/",
    ],
)
def test_redirect_to_a_forbidden_target_is_refused(live: LiveServer, location: str) -> None:
    from urllib.parse import quote

    before = live.seen.connections
    with pytest.raises(ImageValuePatternError):
        fetch(live.url("/to?loc=" + quote(location.format(port=live.port), safe="")), ALLOW_LOOPBACK)
    assert live.seen.connections == before + 1  # the redirecting hop only


def test_redirect_to_a_name_resolving_to_a_forbidden_address(live: LiveServer) -> None:
    alias = loopback_alias()
    start = live.url(f"/to?loc=http://{alias}:{live.port}/img", "localhost")
    with pytest.raises(ImageNotFound):
        fetch(start, "localhost")  # localhost is allowed by name; the alias is not


# Answers that are not an image


@pytest.mark.parametrize("path", ["/missing", "/no-location"])
def test_not_found_answers(live: LiveServer, path: str) -> None:
    with pytest.raises(ImageNotFound):
        fetch(live.url(path), ALLOW_LOOPBACK)


def test_closed_port_is_not_found() -> None:
    with serve() as gone:
        url = gone.url("/img")
    with pytest.raises(ImageNotFound):
        fetch(url, ALLOW_LOOPBACK)


def test_declared_oversize_is_refused(live: LiveServer) -> None:
    with pytest.raises(ImageValuePatternError):
        fetch(live.url("/big"), ALLOW_LOOPBACK)
    assert len(fetch(live.url("/big"), ALLOW_LOOPBACK, max_bytes=MAX + 1)) == MAX + 1


def test_streamed_oversize_stops_reading_at_the_cap(live: LiveServer) -> None:
    started = time.monotonic()
    with pytest.raises(ImageValuePatternError):
        fetch(live.url("/endless"), ALLOW_LOOPBACK, max_bytes=200_000)
    assert time.monotonic() - started < 2.0


def test_content_coding_is_refused(live: LiveServer) -> None:
    with pytest.raises(ImageValuePatternError):
        fetch(live.url("/gzip"), ALLOW_LOOPBACK)


def test_stalled_body_hits_the_read_timeout(live: LiveServer) -> None:
    started = time.monotonic()
    with pytest.raises(ImageNotFound):
        fetch(live.url("/stall"), ALLOW_LOOPBACK, fetch_read_timeout_s=0.3)
    assert time.monotonic() - started < 2.0


def test_slow_drip_costs_at_most_the_deadline(live: LiveServer) -> None:
    started = time.monotonic()
    with pytest.raises(ImageNotFound):
        fetch(live.url("/drip"), ALLOW_LOOPBACK, max_bytes=10**6, fetch_total_timeout_s=1.0)
    assert 0.9 < time.monotonic() - started < 2.0


# HTTPS: the connection goes to the pinned IP, SNI and certificate check use the host name


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def live_tls(tls_files: tuple[Path, Path]) -> Iterator[LiveServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    with serve(context) as server:
        yield server


def test_https_pins_the_ip_and_verifies_the_host_name(live_tls: LiveServer, tls_files: tuple[Path, Path]) -> None:
    ca = tls_files[0]
    assert fetch(live_tls.url("/img", "localhost"), "localhost", fetch_ca_file=ca) == IMAGE
    assert live_tls.seen.sni[-1] == "localhost"
    assert live_tls.seen.hosts[-1] == f"localhost:{live_tls.port}"
    # Redirects keep the name for the next hop's SNI too.
    assert fetch(live_tls.url("/hops/2", "localhost"), "localhost", fetch_ca_file=ca) == IMAGE


def test_https_certificate_must_match_the_host_name(live_tls: LiveServer, tls_files: tuple[Path, Path]) -> None:
    alias = loopback_alias()  # the certificate names only "localhost"
    with pytest.raises(ImageNotFound):
        fetch(live_tls.url("/img", alias), alias, fetch_ca_file=tls_files[0])
    with pytest.raises(ImageNotFound):
        fetch(live_tls.url("/img"), ALLOW_LOOPBACK, fetch_ca_file=tls_files[0])
    with pytest.raises(ImageNotFound):  # and the CA must be trusted
        fetch(live_tls.url("/img", "localhost"), "localhost")


# Redirect targets that no parser should turn into a 500


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:99999/img",
        "http://127.0.0.1:65536/img",
        "http://127.0.0.1:0/img",
        "http://images.test:70000/img",
        "http://[::1:80/img",
        "http://127.0.0.1:-1/img",
        "http://exa mple.test/img",
        "http://\u00ff.test/img",
        "//:80",
    ],
)
def test_redirect_to_an_impossible_address_is_refused(live: LiveServer, location: str) -> None:
    from urllib.parse import quote

    with pytest.raises((ImageValuePatternError, ImageNotFound)):
        fetch(live.url("/to?loc=" + quote(location, safe="")), ALLOW_LOOPBACK)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/img", "http://images.test:65536/img", "http://[::1]:0/"])
def test_impossible_port_in_the_address_is_refused(url: str) -> None:
    with pytest.raises(ImageValuePatternError):
        fetch(url, ALLOW_LOOPBACK + ",images.test")


def test_redirect_locations_fuzzed(live: LiveServer) -> None:
    """Whatever Location a host sends (latin-1, as HTTP carries it), the fetch ends in bytes or a spec error."""
    from urllib.parse import quote

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from(
        [
            "http://",
            "https://",
            "//",
            "127.0.0.1",
            "images.test",
            "localhost",
            ":",
            "99999",
            "65535",
            "0",
            "-1",
            "[",
            "]",
            "::1",
            "@",
            "/img",
            "/hops/1",
            "?",
            "#",
            "%",
            "%00",
            "%zz",
            "\\",
            " ",
            "\t",
            "\u00e9",
            "\u00ff",
        ]
    )
    location = st.lists(
        pieces | st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=6), min_size=1, max_size=8
    ).map("".join)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(location)
    def check(value: str) -> None:
        with suppress(ImageValuePatternError, ImageNotFound):
            fetch(live.url("/to?loc=" + quote(value, safe="")), ALLOW_LOOPBACK + ",images.test")

    check()
