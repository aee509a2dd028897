"""Files the server trusts and re-reads on change (keys, fault rules): what tells that one has
changed, and who may read or write it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

FileStamp = tuple[int, int, int]


def file_stamp(path: Path) -> FileStamp | None:
    """(mtime in ns, size, inode), or None when the file cannot be stat'ed (deleted, say)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def permission_problem(path: Path, what: str) -> str | None:
    """Why ``path`` may not be trusted: readable or writable by others, or writable by its group
    (anyone but its owner could rewrite it); None when fine or not stat'able (reading it says why).
    Group-readable is accepted: Kubernetes mounts Secrets and ConfigMaps so with ``fsGroup``."""
    if os.name != "posix":
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXO | stat.S_IWGRP):
        return f"{what} {path} can be read or written by others (mode {stat.S_IMODE(mode):o}): chmod 600 {path}"
    return None
