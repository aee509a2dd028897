"""``comparefaces tls init``: a local development CA and a server certificate it signed.

The CA is made once and kept (``ca.pem``, ``ca-key.pem``); running the command again issues a new
server certificate from the same CA, so that clients that already trust ``ca.pem`` keep working.
Keys are ECDSA P-256 and written readable by their owner only. For development on one machine:
a production server presents a certificate from a CA its clients already trust.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.settings import Settings

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
CA_DAYS = 3650
SERVER_DAYS = 397  # what browsers accept for a leaf; the SDKs do not care


@dataclass(frozen=True)
class TlsFiles:
    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca-key.pem"

    @property
    def cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def key(self) -> Path:
        return self.folder / "server-key.pem"


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, with ``mode`` from the start (a key is never readable by others, not even briefly)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())


def _subject_alt_names(names: list[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name.strip("[]"))))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def _make_ca(files: TlsFiles, now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"comparefaces development CA ({os.uname().nodename})")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(files.ca_key, _key_pem(key), 0o600)
    _write(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _load_ca(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{files.ca_key} is not the EC key this command writes")
    return cert, key


def init(folder: Path, names: list[str]) -> tuple[TlsFiles, bool]:
    """Write the CA (unless there is one) and a server certificate for ``names``; (files, CA is new)."""
    files = TlsFiles(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    new_ca = not (files.ca_cert.exists() and files.ca_key.exists())
    ca_cert, ca_key = _make_ca(files, now) if new_ca else _load_ca(files)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # Key first: the server re-reads the pair on change, and a new certificate beside the old key
    # would only be a pair that does not load (the previous one stays in use until both are new).
    _write(files.key, _key_pem(key), 0o600)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files, new_ca


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="tls_command", required=True)
    make = commands.add_parser("init", help="a local development CA (kept) and a new server certificate from it")
    make.add_argument("--dir", type=Path, default=Path("tls"), help="folder for the PEM files (default: ./tls)")
    make.add_argument(
        "--name",
        action="append",
        default=None,
        help="a host name or IP address the certificate is for (repeatable; default: localhost 127.0.0.1 ::1)",
    )


def run_cli(args: argparse.Namespace, settings: Settings) -> int:
    files, new_ca = init(args.dir, args.name or list(DEFAULT_NAMES))
    ca = files.ca_cert.resolve()
    print(f"{'new' if new_ca else 'kept'} development CA: {ca} (its key {files.ca_key.resolve()} stays here)")
    print(f"server certificate for {', '.join(args.name or DEFAULT_NAMES)}; serve HTTPS with:")
    print(f"  export COMPAREFACES_TLS_CERT_FILE={files.cert.resolve()}")
    print(f"  export COMPAREFACES_TLS_KEY_FILE={files.key.resolve()}")
    print("make the clients trust the CA (docs/sdks-and-keys.md, 'HTTPS'), e.g.:")
    print(f"  export ALIBABA_CLOUD_CA_BUNDLE={ca}   # core SDK (aliyun-python-sdk-core)")
    print(f"  export REQUESTS_CA_BUNDLE={ca}        # oss2")
    print(f"  export NODE_EXTRA_CA_CERTS={ca}       # every Node SDK, ali-oss included")
    print(f"  Config(ca='{ca}')   # Python Tea (alibabacloud-tea-openapi)")
    return 0
