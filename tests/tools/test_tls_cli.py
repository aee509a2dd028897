"""``comparefaces tls init``: a development CA kept across runs, a server certificate that verifies
for the names asked, keys readable by their owner only, and the lines printed as documented."""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from app.cli import main
from app.tls import server_context
from tests.helpers.server import REPO


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["tls", "init", *argv]) == 0
    return capsys.readouterr().out


def test_init_writes_a_ca_and_a_server_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "tls"
    out = run(capsys, "--dir", str(folder))
    for name in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert f"export COMPAREFACES_TLS_CERT_FILE={folder / 'server.pem'}" in out
    assert f"export COMPAREFACES_TLS_KEY_FILE={folder / 'server-key.pem'}" in out
    assert f"export NODE_EXTRA_CA_CERTS={folder / 'ca.pem'}" in out
    cert = x509.load_pem_x509_certificate((folder / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    # What a strict client (Python's default context: X509_STRICT on 3.13) accepts.
    context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "server.pem", folder / "server-key.pem")
    assert handshake_ok(server, context, "127.0.0.1") and handshake_ok(server, context, "localhost")
    assert not handshake_ok(server, context, "example.com")


def test_a_second_run_keeps_the_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "tls"
    run(capsys, "--dir", str(folder))
    ca, first = (folder / "ca.pem").read_bytes(), (folder / "server.pem").read_bytes()
    out = run(capsys, "--dir", str(folder), "--name", "faces.test", "--name", "10.1.2.3")
    assert "kept development CA" in out
    assert (folder / "ca.pem").read_bytes() == ca and (folder / "server.pem").read_bytes() != first
    cert = x509.load_pem_x509_certificate((folder / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["faces.test"]


def handshake_ok(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> bool:
    """One in-memory handshake of ``client`` (checking ``name``) with ``server``."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=name)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        done = 0
        for side in (c, s):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return False
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done == 2:
            return True
    return False


def test_the_documented_commands_make_a_pair_the_server_loads(tmp_path: Path) -> None:
    """docs/sdks-and-keys.md ("HTTPS"), run as written up to `comparefaces serve` (which
    tests/test_listeners.py runs with these settings)."""
    doc = (REPO / "docs" / "sdks-and-keys.md").read_text()
    block = doc.split("### HTTPS: trusting the server's certificate")[1].split("```bash\n")[1].split("```")[0]
    lines = block.strip().splitlines()
    assert lines[-1] == "comparefaces serve"
    script = "\n".join([*lines[:-1], 'echo "$COMPAREFACES_TLS_CERT_FILE"', 'echo "$COMPAREFACES_TLS_KEY_FILE"'])
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(["bash", "-euc", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cert, key = done.stdout.strip().splitlines()[-2:]
    assert Path(cert) == tmp_path / "tls" / "server.pem" and (tmp_path / "tls" / "ca.pem").is_file()
    server_context(Path(cert), Path(key))  # loads as the server loads it
