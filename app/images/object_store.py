"""``oss://bucket:key`` objects: from a local directory, or from any S3-compatible endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from app.errors import ImageNotFound, ImageValuePatternError
from app.settings import Settings


class ObjectStore(Protocol):
    async def get(self, bucket: str, key: str, max_bytes: int) -> bytes: ...

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        """Write (or replace) one object: the OSS upload endpoint's PutObject."""
        ...

    async def delete_older_than(self, bucket: str, prefix: str, age_s: float) -> int:
        """Delete the objects under ``prefix`` written more than ``age_s`` ago; returns how many."""
        ...

    async def uploads(self, bucket: str, prefix: str) -> list[tuple[float, int]]:
        """(written at, size) of every object under ``prefix``: what the upload budgets start from."""
        ...

    async def free_bytes(self) -> int | None:
        """Free space where objects are written (None: not known, as for a remote store)."""
        ...

    async def close(self) -> None: ...


class UnstorableName(ValueError):
    """A key this store cannot hold: a path segment longer than the file system allows, or a key
    under an existing object (or an object where a folder of others is)."""


UNSTORABLE_ERRNOS = {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY}


class LocalObjectStore:
    """``<root>/<bucket>/<key>``; keys may not climb out of their bucket. Only regular files are
    read (a FIFO, socket or device there is no object), each read or write within ``timeout_s``."""

    def __init__(self, root: Path, timeout_s: float = 10.0) -> None:
        self.root = root.resolve()
        self.timeout_s = timeout_s

    def _path(self, bucket: str, key: str) -> Path:
        try:  # a NUL byte, an over-long name or too deep a path is an object that cannot exist here
            bucket_dir = (self.root / bucket).resolve()
            path = (bucket_dir / key).resolve()
        except (OSError, ValueError) as exc:
            raise ImageNotFound() from exc
        if bucket_dir.parent != self.root or not path.is_relative_to(bucket_dir):
            raise ImageNotFound()
        return path

    def _read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        path = self._path(bucket, key)
        try:  # non-blocking open: opening a FIFO for reading would otherwise wait for a writer
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, ValueError) as exc:  # missing, a name too long for the file system...
            raise ImageNotFound() from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder, FIFO, socket or device
                raise ImageNotFound()
            return within_cap(os.read(fd, max_bytes + 1), max_bytes)
        except OSError as exc:
            raise ImageNotFound() from exc
        finally:
            os.close(fd)

    async def get(self, bucket: str, key: str, max_bytes: int) -> bytes:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._read, bucket, key, max_bytes), self.timeout_s)
        except asyncio.TimeoutError as exc:  # a hung file system: the thread is left to it, the request goes on
            raise ImageNotFound() from exc

    def _write(self, bucket: str, key: str, data: bytes) -> None:
        try:
            path = self._path(bucket, key)
        except ImageNotFound as exc:
            raise UnstorableName() from exc
        temporary = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")  # owner-only, renamed when whole
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException as exc:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in UNSTORABLE_ERRNOS:
                raise UnstorableName() from exc
            raise

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        await asyncio.wait_for(asyncio.to_thread(self._write, bucket, key, data), self.timeout_s)

    def _delete_older_than(self, bucket: str, prefix: str, age_s: float) -> int:
        top = self._path(bucket, prefix)
        if not top.is_dir():
            return 0
        cutoff, deleted = time.time() - age_s, 0
        for folder, _, files in os.walk(top, topdown=False):
            for name in files:
                path = Path(folder, name)
                try:
                    if path.lstat().st_mtime < cutoff:
                        path.unlink()
                        deleted += 1
                except FileNotFoundError:  # another replica got there first
                    pass
            if Path(folder) != top:
                with contextlib.suppress(OSError):  # only an empty folder goes
                    Path(folder).rmdir()
        return deleted

    async def delete_older_than(self, bucket: str, prefix: str, age_s: float) -> int:
        return await asyncio.to_thread(self._delete_older_than, bucket, prefix, age_s)

    def _uploads(self, bucket: str, prefix: str) -> list[tuple[float, int]]:
        found = []
        for folder, _, files in os.walk(self._path(bucket, prefix)):
            for name in files:
                with contextlib.suppress(OSError):
                    status = Path(folder, name).lstat()
                    found.append((status.st_mtime, status.st_size))
        return found

    async def uploads(self, bucket: str, prefix: str) -> list[tuple[float, int]]:
        return await asyncio.to_thread(self._uploads, bucket, prefix)

    def _free_bytes(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.root).free

    async def free_bytes(self) -> int | None:
        return await asyncio.to_thread(self._free_bytes)

    async def close(self) -> None:
        return None


def within_cap(data: bytes, max_bytes: int) -> bytes:
    """``data`` read with one byte to spare, refused if that byte arrived (the object is too large)."""
    if len(data) > max_bytes:
        raise ImageValuePatternError()
    return data


class S3ObjectStore:
    """Alibaba OSS (S3-compatible endpoint), MinIO, SeaweedFS, AWS S3... through boto3."""

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            config=Config(
                connect_timeout=settings.s3_timeout_s,
                read_timeout=settings.s3_timeout_s,
                retries={"max_attempts": 2},
                s3={"addressing_style": "path"},
            ),
        )

    def _read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise ImageNotFound() from exc
        body = response["Body"]
        try:
            if int(response.get("ContentLength") or 0) > max_bytes:
                raise ImageValuePatternError()
            return within_cap(body.read(max_bytes + 1), max_bytes)
        finally:
            body.close()

    async def get(self, bucket: str, key: str, max_bytes: int) -> bytes:
        return await asyncio.to_thread(self._read, bucket, key, max_bytes)

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._client.put_object, Bucket=bucket, Key=key, Body=data)

    def _delete_older_than(self, bucket: str, prefix: str, age_s: float) -> int:
        cutoff, deleted = time.time() - age_s, 0
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            contents = page.get("Contents", [])
            old = [{"Key": item["Key"]} for item in contents if item["LastModified"].timestamp() < cutoff]
            if old:
                self._client.delete_objects(Bucket=bucket, Delete={"Objects": old, "Quiet": True})
                deleted += len(old)
        return deleted

    async def delete_older_than(self, bucket: str, prefix: str, age_s: float) -> int:
        return await asyncio.to_thread(self._delete_older_than, bucket, prefix, age_s)

    def _uploads(self, bucket: str, prefix: str) -> list[tuple[float, int]]:
        found = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            found += [(item["LastModified"].timestamp(), int(item["Size"])) for item in page.get("Contents", [])]
        return found

    async def uploads(self, bucket: str, prefix: str) -> list[tuple[float, int]]:
        return await asyncio.to_thread(self._uploads, bucket, prefix)

    async def free_bytes(self) -> int | None:
        return None

    async def close(self) -> None:
        self._client.close()


def create_object_store(settings: Settings) -> ObjectStore:
    if settings.object_store == "s3":
        return S3ObjectStore(settings)
    return LocalObjectStore(settings.object_store_root, settings.object_store_timeout_s)
