import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from app.engine.runtime import ProviderUnavailableError, create_session, usable_cores


def identity_model(path: Path) -> Path:
    tensor = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [tensor], [out])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_cpu_session_runs_with_one_thread_per_core(tmp_path: Path) -> None:
    session = create_session(identity_model(tmp_path / "id.onnx"), "cpu", intra_op_threads=0)
    (result,) = session.run(None, {"x": np.ones((1, 3), np.float32)})
    assert result.tolist() == [[1.0, 1.0, 1.0]]
    assert session.get_session_options().intra_op_num_threads == usable_cores()
    three = create_session(identity_model(tmp_path / "id.onnx"), "cpu", intra_op_threads=3)
    assert three.get_session_options().intra_op_num_threads == 3


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_usable_cores_follow_the_cpu_affinity_not_the_host() -> None:
    code = (
        "import os; from app.engine.runtime import usable_cores; "
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); print(usable_cores())"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "1"


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="this host has CUDA")
def test_cuda_asked_for_but_absent_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailableError, match="onnxruntime-gpu"):
        create_session(identity_model(tmp_path / "id.onnx"), "cuda", intra_op_threads=1)
