"""Hostile and odd image files, built from the astronaut's face so that "odd but valid" ones are
expected to succeed and "broken" ones to be refused."""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

import cv2
import numpy as np
from PIL import Image

from tests.helpers.images import astronaut_face_crop, encode


@cache
def face_jpeg() -> bytes:
    return encode(astronaut_face_crop())


@cache
def face_png() -> bytes:
    return encode(astronaut_face_crop(), ".png")


def face_rgb() -> Image.Image:
    return Image.fromarray(cv2.cvtColor(astronaut_face_crop(), cv2.COLOR_BGR2RGB))


def pil_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, *, bit_depth: int = 8, colour: int = 2) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """The face JPEG with its frame header (SOF) rewritten to declare another size."""
    data = bytearray(face_jpeg())
    at = 2
    while at < len(data):
        marker, length = data[at + 1], struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        at += 2 + length
    raise AssertionError("no SOF marker")


def bmp_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(np.zeros((16, 16, 3), np.uint8), ".bmp"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def webp_declaring(width: int, height: int) -> bytes:
    """An extended (VP8X) WebP whose canvas is ``width`` x ``height`` (at most 16384 a side)."""
    simple = pil_bytes(Image.new("RGB", (16, 16)), "WEBP")
    bitstream = simple[12:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    vp8x += (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + bitstream
    return b"RIFF" + struct.pack("<I", len(body)) + body


def jpeg_with_app1(payloads: list[bytes]) -> bytes:
    """The face JPEG with APP1 segments inserted right after SOI."""
    data = face_jpeg()
    segments = b"".join(b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p for p in payloads)
    return data[:2] + segments + data[2:]


def exif_ifd(entries: list[tuple[int, int, int, int]], next_ifd: int = 0) -> bytes:
    """A little-endian TIFF header and one IFD at offset 8: (tag, type, count, value) entries."""
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *entry) for entry in entries)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", next_ifd)


def animated(fmt: str, first: Image.Image) -> bytes:
    frames = [first, Image.new("RGB", first.size), Image.new("RGB", first.size, (255, 0, 0))]
    return pil_bytes(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def truncated(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def corrupted(data: bytes, start: int, seed: int = 0) -> bytes:
    """Random bytes over everything after ``start`` (headers intact, entropy-coded data garbage)."""
    noise = np.random.default_rng(seed).integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    return data[:start] + noise


def flip_png_idat(data: bytes) -> bytes:
    """The PNG with one bit of its first IDAT flipped (CRC mismatch, broken deflate stream)."""
    at = data.index(b"IDAT") + 4 + 10
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


@cache
def progressive_scan_bomb(side: int = 6000, extra_scans: int = 3000) -> bytes:
    """A valid progressive JPEG of ``side`` x ``side`` whose smallest scan is repeated ``extra_scans``
    times: a few hundred KB to send, each repeat one more pass over every coefficient to decode
    (libjpeg only warns about the bogus progression)."""
    data = pil_bytes(Image.new("RGB", (side, side), (128, 120, 110)), "JPEG", quality=90, progressive=True)
    starts = [at for at in range(len(data) - 1) if data[at] == 0xFF and data[at + 1] == 0xDA]
    end = len(data) - 2  # EOI
    scans = [data[a:b] for a, b in zip(starts, [*starts[1:], end], strict=True)]
    return data[:end] + min(scans[1:], key=len) * extra_scans + data[end:]


def full_decode_bomb(fmt: str, side: int = 6000) -> bytes:
    """A small file that decodes to ``side`` x ``side`` pixels at full size (PNG, WebP or BMP cannot
    be decoded at a reduced scale)."""
    tile = np.random.default_rng(1).integers(0, 255, (50, 50, 3), dtype=np.uint8)
    pixels = cv2.resize(tile, (side, side), interpolation=cv2.INTER_NEAREST)
    return pil_bytes(Image.fromarray(pixels), fmt, **({"lossless": True} if fmt == "WEBP" else {}))
