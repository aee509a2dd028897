"""A real HTTP image host on 127.0.0.1 that can be slow, drip, or never answer.

Paths: ``/face.jpg`` (at once), ``/slow/<seconds>/face.jpg`` (answers after a delay),
``/drip/face.jpg`` (headers, then one byte every half second), ``/dead/face.jpg`` (reads the
request, never answers), anything else 404. ``started`` counts requests received, so a test can
wait until a server under test is busy fetching.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ImageHost(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    image: bytes
    started: threading.Semaphore
    stop: threading.Event

    def wait_started(self, timeout_s: float = 10.0) -> bool:
        """Wait until one more request has arrived."""
        return self.started.acquire(timeout=timeout_s)


class Handler(BaseHTTPRequestHandler):
    server: ImageHost
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _image(self) -> None:
        body = self.server.image
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.started.release()
        parts = self.path.split("/")
        if self.path == "/face.jpg":
            self._image()
        elif len(parts) == 4 and parts[1] == "slow":
            self.server.stop.wait(float(parts[2]))
            self._image()
        elif self.path == "/drip/face.jpg":
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.server.image)))
            self.end_headers()
            for byte in self.server.image:
                if self.server.stop.wait(0.5):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        elif self.path == "/dead/face.jpg":
            self.server.stop.wait(120)
            self.close_connection = True
        else:
            self.send_error(404)


@contextmanager
def image_host(image: bytes) -> Iterator[tuple[str, ImageHost]]:
    host = ImageHost(("127.0.0.1", 0), Handler)
    host.image = image
    host.started = threading.Semaphore(0)
    host.stop = threading.Event()
    thread = threading.Thread(target=host.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{host.server_address[1]}", host
    finally:
        host.stop.set()
        host.shutdown()
        host.server_close()
        time.sleep(0)  # let handler threads see the stop event
