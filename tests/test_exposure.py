"""Open mode is an explicit choice wherever other hosts can reach the server; misspelled settings are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.exposure import is_loopback, open_mode_refusal, plain_http_refusal, unknown_variables
from app.settings import Settings


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", ""])
def test_reachable_hosts(host: str) -> None:
    assert not is_loopback(host)


def test_default_binds_loopback_and_serves_open() -> None:
    assert Settings().host == "127.0.0.1"
    assert open_mode_refusal(Settings(access_keys_file=None)) is None


def test_open_mode_on_a_reachable_address_needs_saying_so(tmp_path: Path) -> None:
    refusal = open_mode_refusal(Settings(host="0.0.0.0", access_keys_file=None))
    assert refusal and "ALLOW_UNSIGNED" in refusal
    assert open_mode_refusal(Settings(host="0.0.0.0", allow_unsigned=True)) is None
    assert open_mode_refusal(Settings(host="0.0.0.0", access_keys_file=tmp_path / "keys.json")) is None


def test_empty_keys_variable_counts_as_unset_and_is_refused_when_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPAREFACES_ACCESS_KEYS_FILE", "")
    monkeypatch.setenv("COMPAREFACES_HOST", "0.0.0.0")
    assert open_mode_refusal(Settings()) is not None


def test_misspelled_settings_are_named() -> None:
    environ = {"COMPAREFACES_ACESS_KEYS_FILE": "/k.json", "COMPAREFACES_PORT": "1", "PATH": "/bin"}
    assert unknown_variables(environ) == ["COMPAREFACES_ACESS_KEYS_FILE"]


def test_serve_refuses_to_start_open_on_all_interfaces(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COMPAREFACES_ACCESS_KEYS_FILE", raising=False)
    monkeypatch.delenv("COMPAREFACES_ALLOW_UNSIGNED", raising=False)
    monkeypatch.setenv("COMPAREFACES_ACESS_KEYS_FILE", "/etc/keys.json")  # the misspelling: open mode
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2  # before loading models or binding
    err = capsys.readouterr().err
    assert "refusing to serve unsigned requests on 0.0.0.0" in err


def test_plain_http_on_a_reachable_address_needs_saying_so(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    refusal = plain_http_refusal(Settings(host="0.0.0.0", access_keys_file=keys))
    assert refusal and "TLS_CERT_FILE" in refusal and "ALLOW_PLAIN_HTTP" in refusal
    assert plain_http_refusal(Settings(host="127.0.0.1", access_keys_file=keys)) is None
    assert plain_http_refusal(Settings(host="0.0.0.0", access_keys_file=keys, allow_plain_http=True)) is None
    assert plain_http_refusal(Settings(host="0.0.0.0", tls_cert_file=tmp_path / "c.pem")) is None


def test_serve_refuses_plain_http_on_all_interfaces(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("TLS_CERT_FILE", "TLS_KEY_FILE", "ALLOW_PLAIN_HTTP"):
        monkeypatch.delenv(f"COMPAREFACES_{name}", raising=False)
    monkeypatch.setenv("COMPAREFACES_ACCESS_KEYS_FILE", str(tmp_path / "keys.json"))
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2  # before loading models or binding
    assert "refusing to serve plain HTTP on 0.0.0.0" in capsys.readouterr().err
