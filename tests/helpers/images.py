"""Test photos: ones a dependency ships (scikit-image's astronaut) and ones made from them."""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
LFW = SHARED / "data" / "lfw-dev"


def encode(image_bgr: np.ndarray, ext: str = ".jpg", **params: int) -> bytes:
    flags = [cv2.IMWRITE_JPEG_QUALITY, params.get("quality", 92)] if ext == ".jpg" else []
    ok, buffer = cv2.imencode(ext, image_bgr, flags)
    assert ok
    return buffer.tobytes()


def b64(data: bytes) -> str:
    return "base64://" + base64.b64encode(data).decode()


@cache
def astronaut_bgr() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def astronaut_face_crop() -> np.ndarray:
    """Head and shoulders of the astronaut (her face is around x 170-270, y 60-180)."""
    return astronaut_bgr()[20:260, 120:330].copy()


def require_lfw() -> Path:
    if not LFW.is_dir():
        pytest.skip(f"needs the shared LFW photos at {LFW} (../shared beside the checkout)")
    return LFW


def lfw_photo(name: str, number: int) -> bytes:
    return (require_lfw() / name / f"{name}_{number:04d}.jpg").read_bytes()


def lfw_bgr(name: str, number: int) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(lfw_photo(name, number), np.uint8), cv2.IMREAD_COLOR)
