"""What the benchmark sends: real photo pairs (LFW ``pairs.txt`` format) as CompareFaces form bodies."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parents[1]
Pair = tuple[bytes, bytes]


def default_data_dir() -> Path:
    """``../shared/data`` next to the checkout."""
    return REPO_ROOT.parent / "shared" / "data"


def read_photo_pairs(photos: Path, pairs_file: Path, count: int) -> list[tuple[Path, Path]]:
    """``count`` pairs spread evenly over an LFW ``pairs.txt`` file (same- and different-person alike)."""
    from app.tools.evaluate import read_pairs

    found = []
    for name_a, i, name_b, j, _ in read_pairs(pairs_file):
        a, b = (photos / n / f"{n}_{k:04d}.jpg" for n, k in ((name_a, i), (name_b, j)))
        if a.is_file() and b.is_file():
            found.append((a, b))
    if not found:
        raise SystemExit(f"no photo pairs found from {pairs_file} in {photos}")
    step = max(1, len(found) // count)
    return found[::step][:count]


def request_body(source: bytes, target: bytes) -> bytes:
    """An unsigned CompareFaces form body with both images inline (``base64://``)."""
    return urlencode(
        {
            "Action": "CompareFaces",
            "Version": "2019-03-07",
            "SourceImageType": "FacePic",
            "SourceImageValue": "base64://" + base64.b64encode(source).decode(),
            "TargetImageType": "FacePic",
            "TargetImageValue": "base64://" + base64.b64encode(target).decode(),
        }
    ).encode()
