"""The pinned official Python SDKs of the conformance matrix, each set in its own virtualenv.

``scripts/install-python-sdks.py`` installs them (once; a set whose pins have not changed is kept) under
``sdk_root()``; the matrix tests skip a set that is not installed, saying how to install it. The Node
clients are pinned in ``node/package.json`` (installed by ``scripts/install-node-sdks.sh``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PYTHON_SDKS: dict[str, list[str]] = {
    # Tea, newest major: darabonba-based tea-openapi (V3, v2 and SM3 signatures, call_api).
    "tea3": [
        "alibabacloud-cloudauth20190307==3.14.0",
        "alibabacloud-tea-openapi==0.4.6",
        "alibabacloud-credentials==1.0.12",
    ],
    # Tea, an older major with the tea-openapi of its day (Tea-based, before darabonba).
    "tea2": [
        "alibabacloud-cloudauth20190307==2.9.0",
        "alibabacloud-tea-openapi==0.3.16",
    ],
    # Tea, the first major: RPC v1 only, through alibabacloud-tea-rpc.
    "tea1": [
        "alibabacloud-cloudauth20190307==1.0.7",
    ],
    # The core SDK (RPC v1): current, and a 2019 release.
    "core-new": [
        "aliyun-python-sdk-core==2.16.1",
        "aliyun-python-sdk-cloudauth==2.0.36",
    ],
    "core-old": [
        "aliyun-python-sdk-core==2.11.5",
        "aliyun-python-sdk-cloudauth==2.0.0",
    ],
}


def sdk_root() -> Path:
    """Where the virtualenvs live: ``CONFORMANCE_SDK_DIR``, else the user's cache (kept across clones)."""
    configured = os.environ.get("CONFORMANCE_SDK_DIR")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "comparefaces" / "conformance-sdks"


def stamp(name: str) -> str:
    """What an installed set records: its pins (a change of pins means a reinstall)."""
    return hashlib.sha256("\n".join(PYTHON_SDKS[name]).encode()).hexdigest()[:16]


def venv_python(name: str) -> Path:
    return sdk_root() / name / "bin" / "python"


def installed(name: str) -> bool:
    marker = sdk_root() / name / "pins.sha"
    return venv_python(name).is_file() and marker.is_file() and marker.read_text().strip() == stamp(name)
