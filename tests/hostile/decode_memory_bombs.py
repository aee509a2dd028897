"""Files cheap to send whose decode needs much memory: progressive JPEGs keep libjpeg's whole
coefficient array at full size whatever the reduced scale they are decoded at."""

from __future__ import annotations

import io
from functools import cache

from PIL import Image


def jpeg_bytes(mode: str, size: tuple[int, int], **options: object) -> bytes:
    """A flat ``mode`` ("RGB", "CMYK", "L") JPEG of ``size``: small on the wire whatever its size."""
    colour = {"RGB": (128, 120, 110), "CMYK": (10, 20, 30, 40), "L": 128}[mode]
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "JPEG", quality=90, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


@cache
def progressive_cmyk_bomb() -> bytes:
    """40 MP (7300 x 5472), progressive, CMYK, 4:4:4: about 600 KB, 305 MiB of coefficients to decode."""
    return jpeg_bytes("CMYK", (7300, 5472), progressive=True, subsampling=0)
