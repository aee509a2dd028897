import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from app.engine.onnx_convert import dequantize_blocks, fold_constant_dequantization, make_dims_dynamic


def blocked_model() -> tuple[onnx.ModelProto, np.ndarray]:
    rng = np.random.default_rng(0)
    quantized = rng.integers(-127, 127, (4, 6), dtype=np.int8)
    scales = rng.uniform(0.01, 0.1, (4, 2)).astype(np.float32)
    zero_points = np.zeros((4, 2), np.int8)
    weights = dequantize_blocks(quantized, scales, zero_points, axis=1, block_size=3)
    nodes = [
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["w"], axis=1, block_size=3),
        helper.make_node("MatMul", ["x", "wt"], ["y"]),
        helper.make_node("Transpose", ["w"], ["wt"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6]),
            helper.make_tensor_value_info("q", TensorProto.INT8, [4, 6]),
        ],  # a weight declared as an input
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [
            numpy_helper.from_array(quantized, "q"),
            numpy_helper.from_array(scales, "s"),
            numpy_helper.from_array(zero_points, "z"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), weights


def test_dequantize_blocks_matches_the_definition() -> None:
    quantized = np.array([[1, 2, 3, 4]], np.int8)
    result = dequantize_blocks(quantized, np.array([[0.5, 2.0]], np.float32), np.array([[1, 0]], np.int8), 1, 2)
    np.testing.assert_allclose(result, [[0.0, 0.5, 6.0, 8.0]])


def test_folding_gives_a_plain_float_graph_with_the_same_outputs() -> None:
    model, weights = blocked_model()
    folded = make_dims_dynamic(fold_constant_dequantization(model), spatial=False)
    assert [n.op_type for n in folded.graph.node] == ["MatMul", "Transpose"]
    assert [i.name for i in folded.graph.input] == ["x"]
    session = ort.InferenceSession(folded.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.arange(12, dtype=np.float32).reshape(2, 6)  # batch 2 now allowed
    np.testing.assert_allclose(session.run(None, {"x": x})[0], x @ weights.T, rtol=1e-5)
