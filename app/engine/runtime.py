"""Inference runtimes: a model file becomes a ``Network`` (one blob in, its outputs out), created
once, owned by the engine and shared by the inference threads.

Recognizers run on OpenVINO on CPU by default: on this project's reference machine (AMD EPYC,
AVX-512) it runs SFace 2.5x faster than onnxruntime in float32 (fused depthwise/PReLU kernels) and
4x in bfloat16 where the CPU has bf16 instructions. Detectors run on onnxruntime, which is faster
than OpenVINO on their small, variable-size canvases; onnxruntime is also the CUDA runtime.
"""

from __future__ import annotations

import logging
import os
import queue
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import onnxruntime as ort

if TYPE_CHECKING:
    import openvino

log = logging.getLogger(__name__)

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}

Precision = Literal["f32", "bf16"]


class ProviderUnavailableError(RuntimeError):
    pass


class Network(Protocol):
    """A loaded model with one image input."""

    input_shape: tuple[int | None, ...]  # NCHW; None where the graph leaves a dimension free
    output_names: list[str]

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        """Outputs in the graph's order. Safe to call from several threads at once."""
        ...


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fixed_dims(shape: Any) -> tuple[int | None, ...]:
    return tuple(dim if isinstance(dim, int) and dim > 0 else None for dim in shape)


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
    log.info("loaded %s on onnxruntime %s", model_path.name, session.get_providers()[0])
    return session


class OnnxRuntimeNetwork:
    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session
        model_input = session.get_inputs()[0]
        self._input = model_input.name
        self.input_shape = fixed_dims(model_input.shape)
        self.output_names = [output.name for output in session.get_outputs()]

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        return list(self._session.run(None, {self._input: blob}))


def onnxruntime_network(model_path: Path, provider: str, intra_op_threads: int) -> OnnxRuntimeNetwork:
    return OnnxRuntimeNetwork(create_session(model_path, provider, intra_op_threads))


def bf16_supported(core: openvino.Core) -> bool:
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoNetwork:
    """An OpenVINO CPU model compiled for one stream of ``threads`` threads: a lone request uses
    every core, concurrent requests queue on the stream instead of oversubscribing the cores. An
    infer request is not thread-safe, so each call borrows one from a pool that grows to the number
    of concurrent callers."""

    def __init__(self, model_path: Path, threads: int, precision: Precision) -> None:
        import openvino

        core = openvino.Core()
        if precision == "bf16" and not bf16_supported(core):
            log.info("this CPU has no bf16 instructions: %s runs in float32", model_path.name)
            precision = "f32"
        model = core.read_model(str(model_path))
        if model.inputs[0].get_partial_shape()[0].is_static:  # IR files may fix the batch at 1: free it
            shape = model.inputs[0].get_partial_shape()
            shape[0] = openvino.Dimension()
            model.reshape(shape)
        self._compiled = core.compile_model(
            model,
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": precision,
                "INFERENCE_NUM_THREADS": threads,
                "NUM_STREAMS": 1,
                "ENABLE_CPU_PINNING": False,  # the host, not us, owns the cores
            },
        )
        self.input_shape = tuple(
            dim.get_length() if dim.is_static else None for dim in model.inputs[0].get_partial_shape()
        )
        # The compiled outputs may gain internal aliases: the names are the graph's.
        self.output_names = [output.get_any_name() for output in model.outputs]
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        log.info("loaded %s on OpenVINO CPU (%s, %d threads)", model_path.name, precision, threads)

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            results = request.infer({0: blob})
            # The request reuses its output buffers: copy before handing it to another caller.
            return [np.array(results[output]) for output in self._compiled.outputs]
        finally:
            self._idle.put(request)


def open_network(
    model_path: Path, *, provider: str, backend: str, intra_op_threads: int, precision: Precision = "f32"
) -> Network:
    """``model_path`` on OpenVINO (CPU only) or onnxruntime; ``precision`` applies to OpenVINO."""
    if provider == "cpu" and backend == "openvino":
        return OpenVinoNetwork(model_path, intra_op_threads or usable_cores(), precision)
    return onnxruntime_network(model_path, provider, intra_op_threads)
