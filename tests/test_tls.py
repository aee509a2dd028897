"""HTTPS on the API port: TLS 1.2+ with forward-secret AEAD suites only, the certificate and key
re-read on change (the previous pair kept when the new one does not load), and settings that do not
make a pair refused before binding."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import Settings
from app.tls import TlsConfigError, server_context, server_tls
from app.tools.tls import TlsFiles, init
from tests.helpers.server import run_server


@pytest.fixture()
def files(tmp_path: Path) -> TlsFiles:
    return init(tmp_path / "tls", ["127.0.0.1"])[0]


@pytest.fixture()
def served(files: TlsFiles, tmp_path: Path) -> Iterator[tuple[int, TlsFiles]]:
    """An open server (loopback) over HTTPS with ``files``; yields its port."""
    settings = Settings(object_store_root=tmp_path / "oss", tls_cert_file=files.cert, tls_key_file=files.key)
    with run_server(settings) as url:
        yield int(url.rpartition(":")[2]), files


def handshake(port: int, context: ssl.SSLContext) -> tuple[str | None, str | None, bytes]:
    """(protocol version, cipher, the server's certificate in DER) of one new connection."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        cipher = tls.cipher()
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return tls.version(), cipher[0] if cipher else None, der


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def test_tls_1_2_and_1_3_are_served_with_aead_suites(served: tuple[int, TlsFiles]) -> None:
    port, files = served
    version, cipher, _ = handshake(port, trusting(files.ca_cert))
    assert version == "TLSv1.3"
    only_12 = trusting(files.ca_cert)
    only_12.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher, _ = handshake(port, only_12)
    assert version == "TLSv1.2" and cipher is not None and cipher.startswith("ECDHE-") and "GCM" in cipher


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")  # the old versions, on purpose
def test_tls_1_1_and_cbc_suites_are_refused(served: tuple[int, TlsFiles]) -> None:
    port, files = served
    old = trusting(files.ca_cert)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer what OpenSSL 3 no longer does
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        handshake(port, old)
    cbc = trusting(files.ca_cert)
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:AES128-SHA")
    with pytest.raises(ssl.SSLError):
        handshake(port, cbc)


def test_a_new_pair_is_used_by_the_next_handshake(
    served: tuple[int, TlsFiles], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port, files = served
    _, _, first = handshake(port, trusting(files.ca_cert))
    renewed = init(tmp_path / "other-ca", ["127.0.0.1"])[0]  # another CA: only the new pair verifies
    shutil.copy(renewed.key, files.key)
    shutil.copy(renewed.cert, files.cert)
    with caplog.at_level(logging.INFO, logger="comparefaces.tls"):
        _, _, second = handshake(port, trusting(renewed.ca_cert))
    assert second != first
    assert "TLS certificate reloaded" in caplog.text
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(port, trusting(files.ca_cert))


def test_a_pair_that_does_not_load_leaves_the_previous_one_in_use(
    served: tuple[int, TlsFiles], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port, files = served
    _, _, before = handshake(port, trusting(files.ca_cert))
    other = init(tmp_path / "other-ca", ["127.0.0.1"])[0]
    shutil.copy(other.cert, files.cert)  # a certificate beside a key that is not its own
    with caplog.at_level(logging.ERROR, logger="comparefaces.tls"):
        _, _, during = handshake(port, trusting(files.ca_cert))
    assert during == before
    assert "not reloaded, the previous one stays in use" in caplog.text
    files.cert.write_text("-----BEGIN CERTIFICATE-----\nhalf written")
    assert handshake(port, trusting(files.ca_cert))[2] == before
    shutil.copy(other.key, files.key)  # the pair is whole again
    shutil.copy(other.cert, files.cert)
    assert handshake(port, trusting(other.ca_cert))[2] != before


def test_settings_that_make_no_pair_are_refused(files: TlsFiles, tmp_path: Path) -> None:
    assert server_tls(Settings()) is None
    with pytest.raises(TlsConfigError, match="both"):
        server_tls(Settings(tls_cert_file=files.cert))
    with pytest.raises(TlsConfigError, match="does not exist"):
        server_context(files.cert, tmp_path / "missing.pem")
    other = init(tmp_path / "other", ["127.0.0.1"])[0]
    with pytest.raises(TlsConfigError, match="do not load"):
        server_context(files.cert, other.key)
    files.key.chmod(0o644)
    with pytest.raises(TlsConfigError, match="chmod 600"):
        server_context(files.cert, files.key)
    files.key.chmod(0o640)  # group-readable, as Kubernetes mounts a Secret with fsGroup: accepted
    assert server_context(files.cert, files.key)
