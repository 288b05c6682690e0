"""Fold per-channel arithmetic after a Conv or Gemm into its weights and bias: Conv -> Sub(c) -> Mul(s) -> Add(b)
becomes one Conv.

Keras's export writes BatchNormalization as (x - mean) * (gamma / sqrt(var + eps)) + beta, three elementwise
ops with per-channel constants (a BatchNormalization node would be folded by fold-batchnorm), and a Conv's bias
as an Add once its layout Transposes are gone. For y = W*x + b and a constant c per output channel (or a scalar):
y + c, y - c, y * c and y / c are the Conv (Gemm) with weights W, W, W*c, W/c and bias b+c, b-c, b*c, b/c — exact
up to float rounding. Matched only where the Conv/Gemm output is read by that one op alone and the constant
varies along the channel axis only; c - y and c / y are left alone.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.canonical.sink_transposes import bypass
from accelc.transforms.rewrite import add_initializer, attr, const_array, is_op, replace_input

OPS = ("Add", "Sub", "Mul", "Div")


@register
class FoldChannelAffine(AccelcPass):
    name = "fold-channel-affine"

    def call(self, model: ir.Model) -> PassResult:
        graph, folded = model.graph, {}
        for node in list(graph):
            if node.graph is not graph or not (is_op(node, "Conv") or _plain_gemm(node)):
                continue
            while (op := _next_affine(graph, node)) is not None:
                kind, c = op
                _fold(graph, node, kind.op_type, c)
                bypass(graph, kind, node.outputs[0])
                folded[kind.op_type] = folded.get(kind.op_type, 0) + 1
        return PassResult(model, bool(folded), stats={"folded": folded})


def _plain_gemm(node: ir.Node) -> bool:
    return is_op(node, "Gemm") and not attr(node, "transA", 0)


def _next_affine(graph: ir.Graph, node: ir.Node) -> tuple[ir.Node, np.ndarray] | None:
    """The one reader of the node's output, if it is x op c with c constant per output channel (as a vector)."""
    y = node.outputs[0]
    uses = list(y.uses())
    if y in graph.outputs or len(uses) != 1:
        return None
    reader, index = uses[0].node, uses[0].idx
    if not is_op(reader, *OPS) or len(reader.inputs) != 2 or index != 0 and reader.op_type in ("Sub", "Div"):
        return None
    w = const_array(node.inputs[1])
    c = const_array(reader.inputs[1 - index])
    rank = len(y.shape) if y.shape is not None else (w.ndim if w is not None and is_op(node, "Conv") else 2)
    if w is None or w.dtype != np.float32 or c is None or c.dtype != np.float32 or c.ndim > rank:
        return None
    channels = w.shape[0] if is_op(node, "Conv") else w.shape[0 if attr(node, "transB", 0) else 1]
    padded = c.reshape((1,) * (rank - c.ndim) + c.shape)
    if any(d != 1 for i, d in enumerate(padded.shape) if i != 1) or padded.shape[1] not in (1, channels):
        return None
    vec = np.broadcast_to(padded.reshape(-1), (channels,)).astype(np.float32)
    if reader.op_type == "Div" and not np.all(vec != 0):
        return None
    if len(node.inputs) > 2 and node.inputs[2] is not None and _bias(node, channels) is None:
        return None
    return reader, vec


def _bias(node: ir.Node, channels: int) -> np.ndarray | None:
    """The node's bias as a per-channel vector (zeros when it has none), or None when it is not one."""
    b = const_array(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    if b is None:
        return None if len(node.inputs) > 2 and node.inputs[2] is not None else np.zeros(channels, np.float32)
    if is_op(node, "Gemm"):
        b = b * np.float32(attr(node, "beta", 1.0))
        if b.ndim == 2 and b.shape[0] != 1:
            return None
    if b.size not in (1, channels):
        return None
    return np.broadcast_to(b.reshape(-1), (channels,)).astype(np.float32)


def _fold(graph: ir.Graph, node: ir.Node, op: str, c: np.ndarray) -> None:
    is_conv = is_op(node, "Conv")
    w = const_array(node.inputs[1]).astype(np.float32)
    channels = len(c)
    b = _bias(node, channels)
    if op in ("Mul", "Div"):
        scale = c if op == "Mul" else np.float32(1) / c
        if is_conv:
            w = w * scale.reshape((channels,) + (1,) * (w.ndim - 1))
        else:
            w = w * (scale[:, None] if attr(node, "transB", 0) else scale[None, :])
        b = b * scale
        replace_input(graph, node, 1, add_initializer(graph, f"{node.name}_weight", w))
    else:
        b = b + c if op == "Add" else b - c
    if len(node.inputs) < 3:
        node.resize_inputs(3)
    replace_input(graph, node, 2, add_initializer(graph, f"{node.name}_bias", b))
    if not is_conv:
        node.attributes["beta"] = ir.AttrFloat32("beta", 1.0)
