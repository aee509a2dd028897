"""Image addresses of the API: ``http(s)://``, ``oss://bucket:key``, ``base64://``."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from app.errors import ImageValuePatternError

DATA_URL_HEADER = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,", re.IGNORECASE)
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_OBJECT_KEY_BYTES = 1023  # OSS's limit on an object name (UTF-8)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class UrlAddress:
    url: str


@dataclass(frozen=True)
class OssAddress:
    bucket: str
    key: str


@dataclass(frozen=True)
class InlineImage:
    data: bytes


Address = UrlAddress | OssAddress | InlineImage


def decode_base64_value(payload: str) -> bytes:
    payload = DATA_URL_HEADER.sub("", payload.strip(), count=1)
    payload = "".join(payload.split())  # line breaks and spaces; 20x faster than a regex on 30 KB
    if not payload:
        raise ImageValuePatternError()
    try:
        return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageValuePatternError() from exc


def object_key_ok(key: str) -> bool:
    """An OSS object name: 1-1023 bytes of UTF-8, no control characters, no ``\\`` at its start."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return 0 < size <= MAX_OBJECT_KEY_BYTES and not key.startswith("\\") and not CONTROL_CHARACTERS.search(key)


def is_inline(value: str) -> bool:
    """Whether ``value`` carries the image itself (``base64://``), not an address to fetch."""
    return value[:10].lower().startswith("base64://")


def parse_address(value: str) -> Address:
    """Classify an image value; anything that matches no form is an ImageValuePatternError."""
    lowered = value[:10].lower()
    if is_inline(value):
        return InlineImage(decode_base64_value(value[len("base64://") :]))
    if lowered.startswith(("http://", "https://")):
        return UrlAddress(value.strip())
    if lowered.startswith("oss://"):
        bucket, separator, key = value[len("oss://") :].partition(":")
        key = key.lstrip("/")
        if not separator or not BUCKET_NAME.match(bucket) or not object_key_ok(key):
            raise ImageValuePatternError()
        return OssAddress(bucket, key)
    raise ImageValuePatternError()
