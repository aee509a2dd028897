"""The local object store reads regular files only, within a deadline, and names what it cannot
store as such (never an unexpected error)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import pytest

from app.errors import ImageNotFound
from app.images.object_store import LocalObjectStore, UnstorableName


@pytest.fixture()
def store(tmp_path: Path) -> LocalObjectStore:
    (tmp_path / "bucket").mkdir()
    return LocalObjectStore(tmp_path, timeout_s=2.0)


def test_a_fifo_is_no_object_and_answers_at_once(store: LocalObjectStore) -> None:
    os.mkfifo(store.root / "bucket" / "pipe.jpg")
    started = time.perf_counter()
    with pytest.raises(ImageNotFound):
        asyncio.run(store.get("bucket", "pipe.jpg", 1024))
    assert time.perf_counter() - started < 1.0


def test_sockets_and_folders_are_no_objects(store: LocalObjectStore) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(store.root / "bucket" / "sock.jpg"))
    (store.root / "bucket" / "folder.jpg").mkdir()
    try:
        for key in ("sock.jpg", "folder.jpg"):
            with pytest.raises(ImageNotFound):
                asyncio.run(store.get("bucket", key, 1024))
    finally:
        listener.close()


def test_a_regular_file_is_read(store: LocalObjectStore) -> None:
    (store.root / "bucket" / "face.jpg").write_bytes(b"data")
    assert asyncio.run(store.get("bucket", "face.jpg", 1024)) == b"data"


def test_a_hung_read_answers_within_the_deadline(store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung file system (simulated: nothing else can hang a local read on demand) costs the
    deadline, not the request."""
    store.timeout_s = 0.2
    monkeypatch.setattr(store, "_read", lambda *_: time.sleep(1.0))

    async def answered_in() -> float:
        started = time.perf_counter()
        with pytest.raises(ImageNotFound):
            await store.get("bucket", "face.jpg", 1024)
        return time.perf_counter() - started

    assert asyncio.run(answered_in()) < 0.9


@pytest.mark.parametrize(
    "key",
    ["x" * 300 + ".jpg", "a/" + "y" * 256 + "/b.jpg", "taken.jpg/under.jpg", "folder"],
    ids=["long-name", "long-folder", "under-an-object", "onto-a-folder"],
)
def test_names_the_file_system_cannot_hold_are_unstorable(store: LocalObjectStore, key: str) -> None:
    (store.root / "bucket" / "taken.jpg").write_bytes(b"data")
    (store.root / "bucket" / "folder" / "inside").mkdir(parents=True)
    with pytest.raises(UnstorableName):
        asyncio.run(store.put("bucket", key, b"data"))
    assert [p.name for p in (store.root / "bucket").rglob("*") if p.is_file()] == ["taken.jpg"]  # no temporary left
