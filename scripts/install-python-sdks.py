#!/usr/bin/env python3
"""Install the pinned official Python SDKs of the conformance matrix, one virtualenv per set.

Sets whose pins have not changed since they were installed are kept, so a rerun takes a second. Uses
``uv`` when it is on the PATH or installable with pip (ten times faster than pip here), pip otherwise.
A set that fails to install is reported and skipped; its tests then skip with the reason.
Usage: scripts/install-python-sdks.py [SET ...]
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("sdk_pins", REPO / "tests" / "conformance" / "sdk_pins.py")
assert spec and spec.loader
pins = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pins)


def find_uv() -> str | None:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if found:
        return found
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "uv"], capture_output=True)
    if installed.returncode == 0:
        return shutil.which("uv", path=str(Path(sys.executable).parent))
    return None


def install(name: str, uv: str | None) -> tuple[str, bool, float, str]:
    started = time.monotonic()
    folder = pins.sdk_root() / name
    if pins.installed(name):
        return name, True, 0.0, "kept"
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if uv:
        steps = [
            [uv, "venv", "-q", "--python", sys.executable, str(folder)],
            [uv, "pip", "install", "-q", "--python", str(folder / "bin" / "python"), *pins.PYTHON_SDKS[name]],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(folder)],
            [str(folder / "bin" / "python"), "-m", "pip", "install", "-q", *pins.PYTHON_SDKS[name]],
        ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            return name, False, time.monotonic() - started, (result.stderr or result.stdout)[-800:]
    (folder / "pins.sha").write_text(pins.stamp(name) + "\n")
    return name, True, time.monotonic() - started, "installed"


def main(names: list[str]) -> int:
    names = names or list(pins.PYTHON_SDKS)
    uv = find_uv()
    print(f"Python SDK sets -> {pins.sdk_root()} (with {'uv' if uv else 'pip'})")
    failed = 0
    with ThreadPoolExecutor(max_workers=3) as pool:
        for name, ok, seconds, note in pool.map(lambda n: install(n, uv), names):
            print(f"  {name:9} {'ok' if ok else 'FAILED'} {seconds:5.1f}s {note if ok else ''}")
            if not ok:
                failed += 1
                print("    " + note.replace("\n", "\n    "), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
