"""Gemm with a constant float weight -> MatMul by alpha * B (transposed when transB=1), + Add of beta * C.

hls4ml 1.3's ONNX frontend has no Gemm handler at all (it expects QONNX's GemmToMatMul to have run); it lowers
MatMul by a constant as its Dense layer and the bias Add after it as an ApplyAlpha. Folding alpha and beta into
the constants is exact up to one float rounding of each product. The node that produces the Gemm's output keeps
its name and that tensor: the Add, or the MatMul itself when there is no bias (the MatMul of a biased Gemm is
new: `<gemm>_matmul`), so per-layer verification compares hls4ml's bias layer with the Gemm. Kept (the support
check refuses them, or the lowering rewrites them): transA=1, a weight that is not a float32 constant — a
quantized weight (DequantizeLinear) is rewritten by accelc.hls.prepare after its QDQ -> QONNX Quant
conversion —, a computed bias with beta != 1, a bias with rows per sample.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, attr, const_array, drop_if_unused, is_op


def _bias(node: ir.Node) -> ir.Value | None:
    return node.inputs[2] if len(node.inputs) > 2 else None


def _why_not(node: ir.Node, w: np.ndarray | None, b: np.ndarray | None) -> str | None:
    if attr(node, "transA", 0):
        return "transA=1"
    if w is None:
        producer = node.inputs[1].producer() if node.inputs[1] is not None else None
        if producer is not None and producer.op_type == "DequantizeLinear":
            return "its weight is quantized (rewritten after the QDQ -> QONNX Quant conversion, in accelc.hls.prepare)"
        return "B is not a constant"
    if w.dtype != np.float32 or w.ndim != 2:
        return f"B is a {w.dtype} constant of rank {w.ndim} (float32 matrices are rewritten)"
    if _bias(node) is not None and b is None and attr(node, "beta", 1.0) != 1.0:
        return f"beta={attr(node, 'beta')} on a computed bias"
    if b is not None and (b.dtype != np.float32 or (b.ndim == 2 and b.shape[0] != 1) or b.ndim > 2):
        return f"C is a {b.dtype} constant of shape {list(b.shape)} (a float32 row is rewritten)"
    return None


def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def _matmul(graph: ir.Graph, node: ir.Node, weight: ir.Value) -> ir.Node:
    """A new MatMul of the Gemm's input by the weight, before the Gemm, with a name no node or value has."""
    mm = ir.node("MatMul", [node.inputs[0], weight], name=_unique(f"{node.name}_matmul", {n.name for n in graph}))
    values = {v.name for n in graph for v in n.outputs} | {v.name for v in graph.inputs} | set(graph.initializers)
    out = node.outputs[0]
    mm.outputs[0].name = _unique(f"{mm.name}_out", values)
    mm.outputs[0].shape = None if out.shape is None else ir.Shape(list(out.shape))
    mm.outputs[0].type = out.type
    graph.insert_before(node, mm)
    return mm


@register
class GemmToMatMul(AccelcPass):
    name = "gemm-to-matmul"

    def call(self, model: ir.Model) -> PassResult:
        graph = model.graph
        stats = {"with_bias": 0, "without_bias": 0}
        warnings = []
        for node in list(graph):
            if not is_op(node, "Gemm"):
                continue
            w, bias = const_array(node.inputs[1]), _bias(node)
            b = const_array(bias)
            reason = _why_not(node, w, b)
            if reason:
                warnings.append(f"Gemm '{node.name}' kept: {reason}")
                continue
            beta = np.float32(attr(node, "beta", 1.0))
            w = (w.T if attr(node, "transB", 0) else w) * np.float32(attr(node, "alpha", 1.0))
            weight, old_weight, old_bias = add_initializer(graph, f"{node.name}_weight", w), node.inputs[1], bias
            for name in list(node.attributes):
                del node.attributes[name]
            if bias is None:  # the MatMul computes the Gemm's output: it keeps the Gemm's name
                node.op_type = "MatMul"
                node.resize_inputs(2)
                node.replace_input_with(1, weight)
                drop_if_unused(graph, old_weight)
                stats["without_bias"] += 1
                continue
            mm = _matmul(graph, node, weight)
            if b is not None:  # a constant bias: beta folded in, as a row hls4ml's ApplyAlpha takes
                bias = add_initializer(graph, f"{node.name}_bias", b.reshape(-1) * beta)
            node.op_type = "Add"
            node.replace_input_with(0, mm.outputs[0])
            node.replace_input_with(1, bias)
            node.resize_inputs(2)
            drop_if_unused(graph, old_weight)
            drop_if_unused(graph, old_bias)
            stats["with_bias"] += 1
        return PassResult(model, any(stats.values()), stats=stats, warnings=warnings)
