"""At DEBUG level, the libraries the server uses do not log what they see: redirect targets with
their queries (tokens), object keys, or request headers (``Authorization``). The README promises
scheme, host and port only."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.errors import ApiError
from app.images.http_fetch import UrlFetcher
from app.images.object_store import S3ObjectStore
from app.logs import configure_logging
from app.settings import Settings
from tests.helpers.server import free_port

SECRETS = ("TOKEN-LEAK-1234", "object-key-leak", "AKIDLEAK0000", "SECRETLEAK0000")


class Redirect(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", f"/next?token={SECRETS[0]}" if "token" not in self.path else "/gone")
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def redirecting_host() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def debug_logs_captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    captured = io.StringIO()
    try:
        configure_logging("debug")
        capture = logging.StreamHandler(captured)
        capture.setLevel(logging.DEBUG)
        root.addHandler(capture)
        yield captured
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def test_debug_logging_leaks_no_tokens_keys_or_headers() -> None:
    pytest.importorskip("boto3")
    with debug_logs_captured() as captured, redirecting_host() as port:
        settings = Settings(
            fetch_allow_networks="127.0.0.1/32",
            fetch_total_timeout_s=5,
            object_store="s3",
            s3_endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens: refused at once
            s3_access_key_id=SECRETS[2],
            s3_secret_access_key=SECRETS[3],
            s3_timeout_s=0.5,
        )

        async def scenario() -> None:
            fetcher = UrlFetcher(settings)
            store = S3ObjectStore(settings)
            try:
                with suppress(ApiError):
                    await fetcher.fetch(f"http://127.0.0.1:{port}/start", 10_000)
                with suppress(ApiError):
                    await store.get("bucket", f"faces/{SECRETS[1]}.jpg", 10_000)
            finally:
                await fetcher.close()
                await store.close()

        asyncio.run(scenario())
        logging.getLogger("comparefaces").debug("debug records do reach the capture")
    text = captured.getvalue()
    assert "debug records do reach the capture" in text
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, (leaked, text[-2000:])
    assert "Authorization" not in text and "authorization" not in text
