"""Fold a Transpose of a quantized constant into the constant: Transpose(DequantizeLinear(Clip(QuantizeLinear(W))))
becomes DequantizeLinear(Clip(QuantizeLinear(W^T))), and likewise without the Clip, or for DequantizeLinear of an
integer constant (Transpose(DequantizeLinear([Clip](W_int)))).

The TorchScript exporter writes a bias-free Linear as MatMul(x, Transpose(W)); with a Brevitas weight quantizer
(accelc.frontend's QONNX import turns its Quant into QuantizeLinear -> Clip -> DequantizeLinear) the Transpose reads
a computed tensor, so the MatMul's weight is no quantized constant and the fpga target refuses both. The dynamo
exporter writes Gemm(transB=1) for the same layer instead.

Exact: QuantizeLinear, Clip and DequantizeLinear are elementwise, so they commute with a permutation of the axes,
as long as what they broadcast moves with it. A per-tensor (scalar) scale and zero point broadcast to every
element; a per-axis (1-D) one is read along `axis`, which becomes the axis the permutation moves it to (the same
numbers, the same order). Declined (and said why, in the stats): blocked quantization (block_size), scales or zero
points that are not constants or not rank 0/1, Clip bounds that are not constant, a constant that is a graph input
(a runtime could override it), and any node of the chain whose output is read by something else or is a graph
output (the untransposed tensor would still be needed). The nodes keep their names; the DequantizeLinear's output
takes the Transpose output's name, so per-layer comparisons still find the tensor the MatMul reads; W^T is a new
initializer '<W>_transposed' (its own dtype), W is dropped when nothing else reads it. Stats: how many Transposes were
rewritten, their names, and the declined ones with the reason. A QONNX quantizer the frontend keeps as a function
call (BipolarQuant, a wide or FLOOR Quant) on a constant, with scalar parameters, moves the same way.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.canonical.sink_transposes import perm_of
from accelc.transforms.rewrite import add_initializer, attr, const_array, is_op, replace_input

_QDQ = ("QuantizeLinear", "DequantizeLinear")
QONNX_FUNCTIONS = "accelc.qonnx"  # accelc.frontend.qonnx_functions.FUNCTION_DOMAIN (the frontend sits above passes)


@register
class TransposeQuantizedWeight(AccelcPass):
    name = "transpose-quantized-weight"

    def call(self, model: ir.Model) -> PassResult:
        graph, rewritten, declined = model.graph, [], {}
        for node in list(graph):
            if node.graph is not graph or not is_op(node, "Transpose"):
                continue
            chain = _chain(graph, node)
            if isinstance(chain, str):
                if chain:
                    declined[node.name] = chain
                continue
            _rewrite(graph, node, chain)
            rewritten.append(node.name)
        stats = {"rewritten": len(rewritten), "transposes": rewritten}
        if declined:
            stats["declined"] = declined
        return PassResult(model, bool(rewritten), stats=stats)


def _chain(graph: ir.Graph, t: ir.Node) -> list[ir.Node] | str:
    """The quantization nodes under a Transpose, DequantizeLinear first, down to the one reading the constant; or
    why not ('' where the Transpose reads no dequantized constant at all: an activation, say)."""
    src = t.inputs[0]
    dq = src.producer() if src is not None else None
    if dq is not None and dq.domain == QONNX_FUNCTIONS:
        return _function_chain(graph, dq)
    if dq is None or not is_op(dq, "DequantizeLinear"):
        return ""
    chain = [dq]
    for op in ("Clip", "QuantizeLinear"):  # DequantizeLinear <- [Clip] <- [QuantizeLinear] <- the constant
        x = chain[-1].inputs[0]
        producer = x.producer() if x is not None else None
        if producer is not None and is_op(producer, op):
            chain.append(producer)
    w = chain[-1].inputs[0]
    if w is None or const_array(w) is None:
        return ""
    if w in graph.inputs:
        return f"the constant '{w.name}' is also a graph input (a runtime may override it)"
    if (const_array(w).dtype.kind == "f") != any(is_op(n, "QuantizeLinear") for n in chain):
        return "a float constant without QuantizeLinear (or an integer one with it)"
    for n in chain:
        out = n.outputs[0]
        if out in graph.outputs or len(out.uses()) != 1:
            return f"the output of {n.op_type} '{n.name}' has another reader"
        why = _params_problem(n)
        if why:
            return why
    p = _perm(t, const_array(w).ndim)
    if p is None:
        return "the permutation does not match the constant's rank"
    return chain


def _function_chain(graph: ir.Graph, q: ir.Node) -> list[ir.Node] | str:
    """A QONNX quantizer kept as a function call (accelc.frontend.qonnx_functions: BipolarQuant, wide or FLOOR
    Quant) on a float constant: elementwise with scalar parameters, so it commutes with the Transpose."""
    w = q.inputs[0]
    if w is None or const_array(w) is None or const_array(w).dtype.kind != "f":
        return ""
    if w in graph.inputs:
        return f"the constant '{w.name}' is also a graph input (a runtime may override it)"
    if q.outputs[0] in graph.outputs or len(q.outputs[0].uses()) != 1:
        return f"the output of {q.op_type} '{q.name}' has another reader"
    if any(v is None or const_array(v) is None or const_array(v).size != 1 for v in q.inputs[1:]):
        return f"{q.op_type} '{q.name}' has parameters that are not constant scalars"
    return [q]


def _params_problem(node: ir.Node) -> str:
    if is_op(node, "Clip"):
        bounds = [v for v in node.inputs[1:] if v is not None]
        return "" if all(const_array(v) is not None and const_array(v).size == 1 for v in bounds) else (
            f"Clip '{node.name}' has bounds that are not constant scalars")
    if attr(node, "block_size", 0):
        return f"{node.op_type} '{node.name}' is blocked (block_size)"
    params = [v for v in node.inputs[1:] if v is not None]
    arrays = [const_array(v) for v in params]
    if any(a is None or a.ndim > 1 for a in arrays):
        return f"{node.op_type} '{node.name}' has a scale or zero point that is not a constant of rank 0 or 1"
    return ""


def _perm(t: ir.Node, rank: int) -> list[int] | None:
    p = perm_of(t) if attr(t, "perm") is not None else list(range(rank))[::-1]
    return p if p is not None and sorted(p) == list(range(rank)) else None


def _rewrite(graph: ir.Graph, t: ir.Node, chain: list[ir.Node]) -> None:
    bottom = chain[-1]
    w = const_array(bottom.inputs[0])
    p = _perm(t, w.ndim)
    replace_input(graph, bottom, 0, add_initializer(graph, f"{bottom.inputs[0].name}_transposed", np.transpose(w, p),
                                                    dtype=None))
    for node in chain:
        if any(const_array(v).ndim == 1 for v in node.inputs[1:] if v is not None) and is_op(node, *_QDQ):
            axis = attr(node, "axis", 1)
            node.attributes["axis"] = ir.AttrInt64("axis", p.index(axis % len(p)))
        out = node.outputs[0]
        if out.shape is not None:
            out.shape = ir.Shape([out.shape[a] for a in p])
    dq_out, y = chain[0].outputs[0], t.outputs[0]
    name = y.name
    if y.type is not None:  # what the Transpose's output was known to be, the DequantizeLinear's now is
        dq_out.type = y.type
    if y.shape is not None:
        dq_out.shape = ir.Shape(list(y.shape))
    y.replace_all_uses_with(dq_out, replace_graph_outputs=True)
    graph.remove(t, safe=True)
    dq_out.name = name
