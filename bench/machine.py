"""What a run ran on: CPU, cores, libraries, load, git commit, and the server settings it records."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from app.settings import Settings
from bench.inputs import REPO_ROOT

RECORDED_SETTINGS = (
    "model",
    "execution_provider",
    "intra_op_threads",
    "detector_threads",
    "inference_workers",
    "recognizer_backend",
    "recognizer_precision",
    "recognizer_batch_window_ms",
    "detection_max_side",
    "min_detection_score",
    "max_in_flight",
)


def machine_info() -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort

    from app.engine.runtime import usable_cores

    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cores_usable": usable_cores(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "numpy": np.__version__,
    }
    try:
        import openvino

        info["openvino"] = openvino.__version__
    except ImportError:
        pass
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        for line in cpuinfo.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
                info["cpu_flags"] = [flag for flag in wanted if flag in flags]
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 2**20, 1)
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import cv2

        info["opencv"] = cv2.__version__
    except ImportError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode == 0:
            info["git"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def bench_settings(settings: Settings) -> dict[str, Any]:
    """The settings that decide the numbers."""
    return {name: getattr(settings, name) for name in RECORDED_SETTINGS}
