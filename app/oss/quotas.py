"""Upload budgets: what one token, one access key and the whole store may hold.

Every upload this process writes is counted until the retention sweep has surely deleted it
(``OSS_UPLOAD_RETENTION_S`` plus one sweep interval), in whole 4 KiB blocks (what a file takes on
disk, however small). An upload is refused when it would take its token over
``OSS_TOKEN_MAX_OBJECTS`` / ``OSS_TOKEN_MAX_BYTES``, the access key that got the token over
``OSS_KEY_MAX_OBJECTS`` / ``OSS_KEY_MAX_BYTES``, the store over ``OSS_STORE_MAX_BYTES``, or the
store's free space under ``OSS_STORE_MIN_FREE_BYTES``. So the uploads on disk stay under
``OSS_STORE_MAX_BYTES`` plus the bodies being written (``MAX_OPEN_REQUESTS`` x ``MAX_IMAGE_BYTES``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from app.oss.errors import OssError
from app.oss.tokens import UploadScope
from app.settings import Settings

BLOCK_BYTES = 4096


class QuotaExceeded(OssError):
    code = "QuotaExceeded"  # the S3-compatible stores' (Ceph RGW, MinIO) code for a spent quota
    status = 403


class StoreFull(OssError):
    code = "ServiceUnavailable"
    message = "The upload store is full, please retry later."
    status = 503


def on_disk(size: int) -> int:
    """Bytes a file of ``size`` bytes takes: whole blocks, at least one."""
    return max(1, -(-size // BLOCK_BYTES)) * BLOCK_BYTES


@dataclass
class Usage:
    objects: int = 0
    bytes: int = 0

    def add(self, objects: int, size: int) -> None:
        self.objects += objects
        self.bytes += size


class UploadQuotas:
    """The uploads this process has written and that are still retained, by token and by key."""

    def __init__(self, settings: Settings, sweep_interval_s: float, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.held_s = settings.oss_upload_retention_s + sweep_interval_s
        self._written: deque[tuple[float, str, str, int]] = deque()  # (forgotten at, token, key, bytes)
        self._tokens: dict[str, Usage] = {}
        self._keys: dict[str, Usage] = {}
        self.total = Usage()

    def seed(self, existing: Iterable[tuple[float, int]]) -> None:
        """Count the uploads already in the store (written at, size) as no one's: a restarted
        process keeps the store-wide ceiling."""
        for written_at, size in sorted(existing):
            self._remember(written_at + self.held_s, "", "", on_disk(size))

    def _remember(self, until: float, token: str, key: str, size: int) -> None:
        self._written.append((until, token, key, size))
        self.total.add(1, size)
        if token:
            self._tokens.setdefault(token, Usage()).add(1, size)
        if key:
            self._keys.setdefault(key, Usage()).add(1, size)

    def _forget_expired(self, now: float) -> None:
        while self._written and self._written[0][0] <= now:
            _, token, key, size = self._written.popleft()
            self.total.add(-1, -size)
            for table, name in ((self._tokens, token), (self._keys, key)):
                usage = table.get(name)
                if usage is not None:
                    usage.add(-1, -size)
                    if usage.objects <= 0:
                        del table[name]

    def reserve(self, scope: UploadScope, size: int, free_bytes: int | None) -> None:
        """Count one more object of ``size`` bytes for ``scope``, or raise the OSS error of the first
        budget it would break. Called just before the write, with no await between check and count;
        a write that fails afterwards stays counted (budgets err on the side of refusing)."""
        settings, blocks = self.settings, on_disk(size)
        self._forget_expired(self.clock())
        token = self._tokens.get(scope.key_id, Usage())
        if token.objects + 1 > settings.oss_token_max_objects or token.bytes + blocks > settings.oss_token_max_bytes:
            raise QuotaExceeded(
                f"This upload token may write {settings.oss_token_max_objects} objects, "
                f"{settings.oss_token_max_bytes} bytes; ask for a new one."
            )
        key = self._keys.get(scope.owner, Usage())
        if key.objects + 1 > settings.oss_key_max_objects or key.bytes + blocks > settings.oss_key_max_bytes:
            raise QuotaExceeded(
                f"This access key's uploads may hold {settings.oss_key_max_objects} objects, "
                f"{settings.oss_key_max_bytes} bytes at once; they are deleted {settings.oss_upload_retention_s} s "
                "after they were written."
            )
        if self.total.bytes + blocks > settings.oss_store_max_bytes:
            raise StoreFull()
        if free_bytes is not None and free_bytes - blocks < settings.oss_store_min_free_bytes:
            raise StoreFull()
        self._remember(self.clock() + self.held_s, scope.key_id, scope.owner, blocks)
