"""Turns an image value into bytes, whatever its address form."""

from __future__ import annotations

from app.errors import ImageValuePatternError
from app.images.addresses import Address, InlineImage, OssAddress, UrlAddress, parse_address
from app.images.http_fetch import UrlFetcher
from app.images.object_store import ObjectStore


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
            raise ImageValuePatternError()
        return data

    async def close(self) -> None:
        await self.fetcher.close()
        await self.store.close()
