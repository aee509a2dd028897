"""Turns an image value into bytes, whatever its address form."""

from __future__ import annotations

import asyncio
import logging

from app.errors import ImageValuePatternError
from app.images.addresses import Address, InlineImage, OssAddress, UrlAddress, parse_address
from app.images.http_fetch import UrlFetcher
from app.images.object_store import ObjectStore

log = logging.getLogger(__name__)

OFF_LOOP_CHARS = 64 * 1024  # image values longer than this are parsed (base64-decoded) in a thread


class ImageLoader:
    def __init__(self, fetcher: UrlFetcher, store: ObjectStore, max_image_bytes: int) -> None:
        self.fetcher = fetcher
        self.store = store
        self.max_image_bytes = max_image_bytes

    async def load(self, value: str | Address) -> bytes:
        """The image bytes of an image value (or of an address already parsed from one)."""
        address = parse_address(value) if isinstance(value, str) else value
        if isinstance(address, InlineImage):
            data = address.data
        elif isinstance(address, UrlAddress):
            data = await self.fetcher.fetch(address.url, self.max_image_bytes)
        elif isinstance(address, OssAddress):
            data = await self.store.get(address.bucket, address.key, self.max_image_bytes)
        if len(data) > self.max_image_bytes:
            reason = (
                f"an image of {len(data)} bytes is over COMPAREFACES_MAX_IMAGE_BYTES={self.max_image_bytes} "
                "(the per-image cap; raise it to accept larger photos)"
            )
            log.info("image refused: %s", reason)
            raise ImageValuePatternError(reason=reason)
        return data

    async def load_pair(self, values: tuple[str, str]) -> tuple[bytes, bytes]:
        """Both images at once. Both addresses are checked before anything is fetched, and when one
        load fails the other is cancelled: no fetch outlives its request (and its admission slot)."""
        if sum(len(value) for value in values) > OFF_LOOP_CHARS:
            addresses = await asyncio.to_thread(lambda: [parse_address(value) for value in values])
        else:
            addresses = [parse_address(value) for value in values]
        tasks = [asyncio.ensure_future(self.load(address)) for address in addresses]
        try:
            source, target = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return source, target

    async def close(self) -> None:
        await self.fetcher.close()
        await self.store.close()
