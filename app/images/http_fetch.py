"""Fetching ``http(s)://`` image addresses with timeouts, a streamed byte cap and few redirects."""

from __future__ import annotations

import httpx

from app.errors import ImageNotFound, ImageValuePatternError
from app.settings import Settings


class UrlFetcher:
    def __init__(self, settings: Settings) -> None:
        self._max_redirects = settings.fetch_max_redirects
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.fetch_read_timeout_s, connect=settings.fetch_connect_timeout_s),
            follow_redirects=False,
            trust_env=False,
        )

    async def fetch(self, url: str, max_bytes: int) -> bytes:
        for _ in range(self._max_redirects + 1):
            try:
                async with self._client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code != 200:
                        raise ImageNotFound()
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise ImageValuePatternError()
                        chunks.append(chunk)
                    return b"".join(chunks)
            except httpx.InvalidURL as exc:
                raise ImageValuePatternError() from exc
            except httpx.HTTPError as exc:
                raise ImageNotFound() from exc
        raise ImageNotFound()

    async def close(self) -> None:
        await self._client.aclose()
