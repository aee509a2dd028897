"""One-time conversion of block-quantized ONNX files into plain float32 graphs.

The OpenCV Zoo int8 "block quantized" files store weights as int8 + per-block scales behind
``DequantizeLinear`` nodes. onnxruntime re-dequantizes them on every call (most of SFace's run
time) and refuses the SFace file as shipped because its initializers are also graph inputs.
Folding those nodes once gives a float32 graph with the same outputs that runs ~3x faster.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


def dequantize_blocks(
    quantized: np.ndarray, scales: np.ndarray, zero_points: np.ndarray | None, axis: int, block_size: int
) -> np.ndarray:
    """Float32 weights of an ONNX DequantizeLinear (per-tensor, per-axis or blocked)."""
    q = quantized.astype(np.float32)
    zp = np.zeros_like(scales, dtype=np.float32) if zero_points is None else zero_points.astype(np.float32)
    if scales.ndim == 0 or scales.size == 1:
        return (q - zp.reshape(())) * scales.reshape(()).astype(np.float32)
    axis = axis % q.ndim
    if block_size:
        scales = np.repeat(scales, block_size, axis=axis)
        zp = np.repeat(zp, block_size, axis=axis)
        index = [slice(None)] * q.ndim
        index[axis] = slice(0, q.shape[axis])
        scales, zp = scales[tuple(index)], zp[tuple(index)]
    else:
        shape = [1] * q.ndim
        shape[axis] = -1
        scales, zp = scales.reshape(shape), zp.reshape(shape)
    return ((q - zp) * scales).astype(np.float32)


def fold_constant_dequantization(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace DequantizeLinear (and Reshape) nodes whose inputs are all constants by initializers."""
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type == "DequantizeLinear" and all(name in constants for name in inputs):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            zero_points = constants[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            constants[node.output[0]] = dequantize_blocks(
                constants[node.input[0]],
                constants[node.input[1]],
                zero_points,
                int(attrs.get("axis", 1)),
                int(attrs.get("block_size", 0)),
            )
        elif node.op_type == "Reshape" and all(name in constants for name in inputs):
            constants[node.output[0]] = constants[node.input[0]].reshape(constants[node.input[1]])
        else:
            kept.append(node)
    used = {name for node in kept for name in node.input} | {out.name for out in graph.output}
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(
        numpy_helper.from_array(np.ascontiguousarray(value), name) for name, value in constants.items() if name in used
    )
    produced = set(constants) | {name for node in kept for name in node.output}
    # Some exporters also declare weights as graph inputs, even unused ones; keep only real feeds.
    real_inputs = [i for i in graph.input if i.name not in produced and i.name in used]
    del graph.input[:]
    graph.input.extend(real_inputs)
    return model


def make_dims_dynamic(model: onnx.ModelProto, *, spatial: bool) -> onnx.ModelProto:
    """Let the first input take any batch (and, if ``spatial``, any H x W)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    named = ((0, "batch"), (2, "height"), (3, "width")) if spatial else ((0, "batch"),)
    for index, name in named:
        dims[index].ClearField("dim_value")
        dims[index].dim_param = name
    for output in model.graph.output:
        for dim in output.type.tensor_type.shape.dim:
            dim.ClearField("dim_value")
            dim.dim_param = "?"
    del model.graph.value_info[:]
    return model


def converted_copy(source: Path, cache_dir: Path, *, dynamic_spatial: bool = False) -> Path:
    """Convert ``source`` once and return the cached float32 file (keyed by the source's hash).

    The result always takes any batch size; ``dynamic_spatial`` also frees height and width.
    """
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    suffix = "-hw" if dynamic_spatial else ""
    target = cache_dir / f"{source.stem}-{digest}-fp32{suffix}.onnx"
    if target.exists():
        return target
    model = fold_constant_dequantization(onnx.load(str(source)))
    model = make_dims_dynamic(model, spatial=dynamic_spatial)
    onnx.checker.check_model(model)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{digest}.tmp")
    onnx.save(model, str(partial))
    partial.replace(target)
    return target
