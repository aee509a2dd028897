"""Fail-closed start-up checks: who could reach an open-mode server, and settings that do not exist.

Pure functions of the settings and the environment; ``comparefaces serve`` runs them before binding.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_address

from app.settings import Settings

PREFIX = "COMPAREFACES_"
NOT_SETTINGS = frozenset({"COMPAREFACES_TEST_LOG_DIR"})  # read by the test suite, not the server


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


def open_mode_refusal(settings: Settings) -> str | None:
    """Why the server must not start, or None. Open mode (no keys file: no signature is checked)
    is an explicit choice wherever other hosts can reach the server."""
    if settings.access_keys_file is not None or is_loopback(settings.host) or settings.allow_unsigned:
        return None
    return (
        f"refusing to serve unsigned requests on {settings.host}: no access keys file is set "
        f"({PREFIX}ACCESS_KEYS_FILE, empty counts as unset). Set one, bind 127.0.0.1, or set "
        f"{PREFIX}ALLOW_UNSIGNED=true to accept that anyone who can reach this address may call it."
    )


def plain_http_refusal(settings: Settings) -> str | None:
    """Why the server must not start, or None: signed requests and face photos travel in clear text
    over plain HTTP, so off loopback that is an explicit choice too (a TLS-terminating proxy in front)."""
    if settings.tls_cert_file is not None or is_loopback(settings.host) or settings.allow_plain_http:
        return None
    return (
        f"refusing to serve plain HTTP on {settings.host}: set {PREFIX}TLS_CERT_FILE and {PREFIX}TLS_KEY_FILE "
        f"(comparefaces tls init makes a development pair), bind 127.0.0.1, or set {PREFIX}ALLOW_PLAIN_HTTP=true "
        "when a proxy in front terminates TLS."
    )


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``COMPAREFACES_*`` names that are no setting (a misspelling silently means a default)."""
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(name for name in environ if name.startswith(PREFIX) and name not in known | NOT_SETTINGS)
