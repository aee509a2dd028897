"""HTTPS on the API port: the certificate and key PEM files, TLS 1.2+ with a modern cipher list, and
the files re-read on change.

Each new handshake looks at the two files (``stat`` only). When either has changed, a new context
is built from them and the handshake, and every later one, uses it; a pair that does not load (a
key that does not match, a half-written file) is logged and the previous pair stays in use, so a
renewal that goes wrong never takes the port down. Connections already open keep their session.
"""

from __future__ import annotations

import logging
import os
import ssl
import stat
from pathlib import Path
from typing import Any

from app.settings import Settings
from app.watched_file import FileStamp, file_stamp

log = logging.getLogger("comparefaces.tls")

# TLS 1.2: forward-secret AEAD suites only (Mozilla's "intermediate" list without DHE); TLS 1.3's
# suites are all AEAD and stay OpenSSL's defaults.
TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)


class TlsConfigError(ValueError):
    """The TLS settings are incomplete, or the certificate and key do not load."""


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context for this pair; raises ``TlsConfigError`` saying why it cannot be built."""
    check_key_permissions(key_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(cert_file, key_file)
    except FileNotFoundError as error:
        raise TlsConfigError(f"TLS file {error.filename} does not exist (tls init makes a pair)") from error
    except (OSError, ssl.SSLError) as error:
        raise TlsConfigError(
            f"the certificate {cert_file} and key {key_file} do not load as a PEM pair: {error}"
        ) from error
    return context


def check_key_permissions(key_file: Path) -> None:
    """A private key others can read, or anyone but its owner can write, is refused."""
    if os.name != "posix":
        return
    try:
        mode = key_file.stat().st_mode
    except OSError:
        return  # loading it says why
    if mode & (stat.S_IRWXO | stat.S_IWGRP):
        raise TlsConfigError(
            f"TLS key {key_file} can be read or written by others (mode {stat.S_IMODE(mode):o}): chmod 600 {key_file}"
        )


class ServerTls:
    """The context uvicorn listens with; it hands each handshake the newest pair that loaded."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file, self.key_file = cert_file, key_file
        self._stamps = self._stamp()
        self.context = server_context(cert_file, key_file)  # the start-up pair must load
        self.context.sni_callback = self._on_client_hello  # called for every ClientHello, SNI or not
        self._current = self.context
        log.info("HTTPS with certificate %s", cert_file)

    def _stamp(self) -> tuple[FileStamp | None, FileStamp | None]:
        return file_stamp(self.cert_file), file_stamp(self.key_file)

    def _on_client_hello(self, connection: Any, server_name: str | None, context: ssl.SSLContext) -> None:
        stamps = self._stamp()
        if stamps != self._stamps:
            self._stamps = stamps
            self._reload()
        if self._current is not context:
            connection.context = self._current

    def _reload(self) -> None:
        try:
            self._current = server_context(self.cert_file, self.key_file)
        except TlsConfigError as error:
            log.error("TLS certificate not reloaded, the previous one stays in use: %s", error)
        else:
            log.info("TLS certificate reloaded from %s", self.cert_file)


def server_tls(settings: Settings) -> ServerTls | None:
    """HTTPS when both files are set, plain HTTP when neither is; one without the other is an error."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise TlsConfigError("set both COMPAREFACES_TLS_CERT_FILE and COMPAREFACES_TLS_KEY_FILE, or neither")
    return ServerTls(cert, key)


def uvicorn_tls_options(tls: ServerTls | None) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` / ``uvicorn.run``: listen with ``tls.context``."""
    if tls is None:
        return {}
    return {"ssl_context_factory": lambda _config, _default: tls.context}
