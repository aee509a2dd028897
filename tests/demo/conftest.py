"""Servers and photos for the demo page's tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.auth.keys import append_key
from app.settings import Settings
from tests.helpers.images import encode, lfw_bgr
from tests.helpers.server import run_server

KEY_ID, SECRET = "LTAI5tDEMOTEST000000001", "DemoSecret0123456789abcdefABCD"


@dataclass(frozen=True)
class KeyedServer:
    url: str
    key_id: str
    secret: str


def keyed_settings(base: Settings, folder: Path, demo: str) -> Settings:
    keys = folder / "keys.json"
    if not keys.exists():
        append_key(keys, KEY_ID, SECRET)
    return base.model_copy(update={"access_keys_file": keys, "demo": demo})


@pytest.fixture(scope="session")
def keyed_demo(server_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedServer]:
    """Signatures checked, demo switched on (``COMPAREFACES_DEMO=on``)."""
    with run_server(keyed_settings(server_settings, tmp_path_factory.mktemp("keys"), "on")) as url:
        yield KeyedServer(url, KEY_ID, SECRET)


def two_faces() -> bytes:
    """One LFW photo with a second, smaller person beside it: two faces, the first one larger."""
    first, second = lfw_bgr("George_W_Bush", 1), lfw_bgr("Tony_Blair", 1)
    small = cv2.resize(second, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    canvas = np.full((first.shape[0], first.shape[1] + small.shape[1], 3), 255, np.uint8)
    canvas[:, : first.shape[1]] = first
    canvas[: small.shape[0], first.shape[1] :] = small
    return encode(canvas)


def no_face() -> bytes:
    """A smooth gradient: a valid photo with nobody in it."""
    ramp = np.linspace(40, 220, 240, dtype=np.uint8)
    return encode(np.dstack([np.tile(ramp, (180, 1))] * 3))
