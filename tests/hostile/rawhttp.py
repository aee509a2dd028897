"""HTTP/1.1 over a raw socket, for requests no client library would send."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(base_url: str, timeout_s: float = 20.0) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout_s)


def read_response(sock: socket.socket) -> RawResponse:
    """One response (Content-Length or chunked body); raises on a closed connection or timeout."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return RawResponse(status, headers, rest[:length])
    if headers.get("transfer-encoding") == "chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body, at = b"", 0
        while True:
            size_end = rest.index(b"\r\n", at)
            size = int(rest[at:size_end], 16)
            if size == 0:
                return RawResponse(status, headers, body)
            body += rest[size_end + 2 : size_end + 2 + size]
            at = size_end + 4 + size
    return RawResponse(status, headers, rest)


def exchange(base_url: str, request: bytes, timeout_s: float = 20.0) -> RawResponse:
    with connect(base_url, timeout_s) as sock:
        sock.sendall(request)
        return read_response(sock)


def post(base_url: str, target: bytes, body: bytes, headers: bytes = b"", timeout_s: float = 20.0) -> RawResponse:
    """A POST with a Content-Length body; ``target`` and ``headers`` are sent as they are."""
    request = (
        b"POST " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        + headers
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    return exchange(base_url, request, timeout_s)


def closed_by_peer(sock: socket.socket, timeout_s: float) -> bool:
    """True when the server closes the connection within ``timeout_s`` (after any response)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def connect_from(url: str, source: str = "127.0.0.1", timeout_s: float = 10.0) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout_s, source_address=(source, 0))


def answered_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server sent anything or closed within ``seconds`` (nothing is consumed)."""
    sock.settimeout(seconds)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def read_request(sock: socket.socket) -> bytes:
    """One request as a client sent it (a Content-Length body or none)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a request")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    length = int(lengths[0]) if lengths else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@contextmanager
def capturing_endpoint() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback endpoint that records each request a client sends it and answers 503 without
    forwarding it: a signed request captured unspent. Yields (base URL, captured requests)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    captured: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            with sock:
                sock.settimeout(10)
                try:
                    captured.append(read_request(sock))
                    sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", captured
    finally:
        stop.set()
        thread.join(5)
        listener.close()
