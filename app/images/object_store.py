"""``oss://bucket:key`` objects: from a local directory, or from any S3-compatible endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import os
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

    async def close(self) -> None: ...


class LocalObjectStore:
    """``<root>/<bucket>/<key>``; keys may not climb out of their bucket."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

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
        try:
            with path.open("rb") as handle:
                return within_cap(handle.read(max_bytes + 1), max_bytes)
        except (OSError, ValueError) as exc:  # missing, a folder, a name too long for the file system...
            raise ImageNotFound() from exc

    async def get(self, bucket: str, key: str, max_bytes: int) -> bytes:
        return await asyncio.to_thread(self._read, bucket, key, max_bytes)

    def _write(self, bucket: str, key: str, data: bytes) -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")  # owner-only, renamed when whole
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, bucket, key, data)

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

    async def close(self) -> None:
        self._client.close()


def create_object_store(settings: Settings) -> ObjectStore:
    if settings.object_store == "s3":
        return S3ObjectStore(settings)
    return LocalObjectStore(settings.object_store_root)
