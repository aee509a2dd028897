"""What tells that a file the server re-reads on change (keys, fault rules) has changed."""

from __future__ import annotations

from pathlib import Path

FileStamp = tuple[int, int, int]


def file_stamp(path: Path) -> FileStamp | None:
    """(mtime in ns, size, inode), or None when the file cannot be stat'ed (deleted, say)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)
