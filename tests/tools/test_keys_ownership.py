"""``comparefaces keys ...`` keeps the keys file's owner, group and group-read bit, or refuses (a
file rewritten by another user as theirs, 0600, is one the server can no longer read)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.auth.keys import load_keys
from app.cli import main

OWNER, GROUP, OTHER = 12345, 23456, 65534  # the server's user and group, and a third user

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")


def keys_file(folder: Path, mode: int) -> Path:
    folder.chmod(0o777)  # any user may create files here (the test's other user too)
    path = folder / "access-keys.json"
    assert main(["keys", "create", "--file", str(path)]) == 0
    os.chown(path, OWNER, GROUP)
    path.chmod(mode)
    return path


@needs_root
@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_root_keeps_owner_group_and_group_read(tmp_path: Path, mode: int, capsys: pytest.CaptureFixture[str]) -> None:
    path = keys_file(tmp_path, mode)
    for argv in (["create"], ["list"], ["create", "--sts", "--expires-in", "1h"]):
        assert main(["keys", *argv, "--file", str(path)]) == 0
    status = path.stat()
    assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (OWNER, GROUP, mode)
    assert len(load_keys(path).keys) == 2
    capsys.readouterr()


@pytest.fixture()
def shared_folder() -> Iterator[Path]:
    """A folder every user can reach (pytest's own are root's only)."""
    folder = Path(tempfile.mkdtemp(prefix="comparefaces-keys-"))
    yield folder
    shutil.rmtree(folder)


@needs_root
def test_another_user_is_refused_and_the_file_stays(shared_folder: Path) -> None:
    tmp_path = shared_folder
    path = keys_file(tmp_path, 0o640)
    before = path.read_bytes()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the other user, with this process's modules already loaded
        os.close(read)
        code = 99
        sys.stderr = open(write, "w", closefd=False)  # noqa: SIM115 (flushed below, the process ends there)
        try:
            os.setgroups([GROUP])  # in the file's group: may read it (0640), as an operator would
            os.setresgid(OTHER, OTHER, OTHER)
            os.setresuid(OTHER, OTHER, OTHER)
            code = main(["keys", "create", "--file", str(path)])
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 2, message
    assert path.read_bytes() == before
    assert (path.stat().st_uid, path.stat().st_gid) == (OWNER, GROUP)
    assert not [
        p for p in tmp_path.iterdir() if p.name.startswith(".access-keys.json.") and not p.name.endswith(".lock")
    ]
    assert "run this as its owner" in message, message


def test_a_new_file_is_the_callers_and_private(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    assert main(["keys", "create", "--file", str(path)]) == 0
    status = path.stat()
    assert (status.st_uid, stat.S_IMODE(status.st_mode)) == (os.geteuid(), 0o600)
    assert json.loads(path.read_text())["keys"]
