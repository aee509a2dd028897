"""``comparefaces serve`` refuses what it cannot serve in one line, before binding the port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.auth.keys import KeysFileError, append_key, load_keys
from tests.helpers.server import REPO


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "serve", "--port", "0"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_missing_keys_file_stops_serve_with_one_line(tmp_path: Path) -> None:
    out = serve({"COMPAREFACES_ACCESS_KEYS_FILE": str(tmp_path / "keys.json")})
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert f"comparefaces: access keys file {tmp_path / 'keys.json'} does not exist" in out.stderr


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_a_keys_file_this_user_cannot_read_says_which_uid_must(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    append_key(keys, "LTAI5tCLITEST0000000001", "CliSecret0123456789abcdefABCD")
    keys.chmod(0o000)
    with pytest.raises(KeysFileError, match=f"uid {os.getuid()} must be able to read it"):
        load_keys(keys)
