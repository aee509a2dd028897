"""onnxruntime sessions: created once per model file, owned by the engine."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


class ProviderUnavailableError(RuntimeError):
    pass


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def create_session(model_path: Path, provider: str, intra_op_threads: int) -> ort.InferenceSession:
    """A session on ``provider`` ('cpu' or 'cuda'); fails loudly if CUDA was asked for but is absent.

    ``intra_op_threads`` 0 means one per usable core.
    """
    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads or usable_cores()
    # Spinning workers burn the cores that concurrent requests (and the event loop) need: measured
    # on 2 shared cores, 2.5x the CPU time per comparison with spinning on, for no gain in latency.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    wanted = PROVIDERS[provider]
    if provider == "cuda" and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # CUDA and cuDNN from the nvidia-* pip packages the gpu extra installs
    if provider == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ProviderUnavailableError(
            "COMPAREFACES_EXECUTION_PROVIDER=cuda but onnxruntime has no CUDAExecutionProvider "
            f"(available: {ort.get_available_providers()}); install onnxruntime-gpu"
        )
    session = ort.InferenceSession(str(model_path), sess_options=options, providers=wanted)
    if session.get_providers()[0] != wanted[0]:
        raise ProviderUnavailableError(f"{wanted[0]} failed to initialise for {model_path.name}")
    log.info("loaded %s on %s", model_path.name, session.get_providers()[0])
    return session
