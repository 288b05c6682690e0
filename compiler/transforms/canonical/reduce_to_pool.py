"""ReduceMean / ReduceMax / ReduceSum over every spatial axis -> global pooling.

`x.mean((2, 3))` is global average pooling written by hand (and `x.mean(2)` after a Conv1d, `x.amax((2, 3))`,
`x.sum((2, 3))`); targets lower GlobalAveragePool / GlobalMaxPool, not the reductions. On an (N, C, d1, ..., dk)
tensor with k >= 1, a reduction whose axes are exactly {2, ..., k + 1} is rewritten:

* ReduceMean -> GlobalAveragePool, ReduceMax -> GlobalMaxPool (the same function);
* ReduceSum -> GlobalAveragePool then a Mul by the (static) number of pooled elements, d1 * ... * dk
  (the sum up to float rounding), on the pooled (N, C, 1, ..., 1) tensor;
* keepdims=0 adds the Flatten(axis=1) that dropping the k axes of size 1 implies: (N, C, 1, ..., 1) -> (N, C).

Axes are read from the attribute (opset <= 17; ReduceSum <= 12) or from a constant second input (opset 18;
ReduceSum 13). The node that produces the reduction's output tensor keeps its name. Any other reduction
(the channel or batch axis, a partial set of spatial axes, ReduceProd, ReduceL2, ...) is left as it is, with a
note; a target that cannot lower it refuses it by name.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, attr, const_array, drop_if_unused, is_op, spatial_shape

POOL = {"ReduceMean": "GlobalAveragePool", "ReduceMax": "GlobalMaxPool", "ReduceSum": "GlobalAveragePool"}


def reduce_axes(node: ir.Node) -> list[int] | None:
    """The axes a Reduce* node reduces, as written (attribute or constant input); [] means all axes
    (or none with noop_with_empty_axes=1); None when they are not constant."""
    axes = attr(node, "axes")
    if axes is not None:
        return [int(a) for a in axes]
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        array = const_array(node.inputs[1])
        return None if array is None else [int(a) for a in array.reshape(-1)]
    return []


def _rank(value: ir.Value | None) -> int | None:
    return None if value is None or value.shape is None else len(value.shape)


def _decline(node: ir.Node) -> str | None:
    """Why this reduction is not a global pool (None: it is one)."""
    rank, axes = _rank(node.inputs[0]), reduce_axes(node)
    if axes is None:
        return "its axes are not constant"
    if rank is None:
        return "its input's rank is unknown"
    if not axes:
        return "it reduces every axis" if not attr(node, "noop_with_empty_axes", 0) else "it reduces no axis"
    if rank < 3 or sorted({a % rank for a in axes}) != list(range(2, rank)):
        return f"axes {axes} of a rank-{rank} tensor are not exactly the spatial axes {list(range(2, rank))}"
    if node.inputs[0].dtype not in (ir.DataType.FLOAT, None):
        return f"a {node.inputs[0].dtype} input"
    if is_op(node, "ReduceSum") and spatial_shape(node.inputs[0]) is None:
        return "a sum needs static spatial dims (it becomes a mean times their product)"
    return None


def _count(graph: ir.Graph, name: str, count: int) -> ir.Value:
    return add_initializer(graph, f"{name}_count", np.array(count, dtype=np.float32))


def _rewrite(graph: ir.Graph, node: ir.Node) -> None:
    """Insert the pool (and the Flatten) before the node; the node becomes the last step, keeping its output."""
    x, name = node.inputs[0], node.name or node.outputs[0].name
    keep = bool(attr(node, "keepdims", 1))
    count = math.prod(spatial_shape(x)) if is_op(node, "ReduceSum") else None
    # The count's Mul on the pooled (N, C, 1, ...) tensor, before the Flatten: the fpga target lowers a Mul there.
    steps = [POOL[node.op_type]] + ([] if count is None else ["Mul"]) + ([] if keep else ["Flatten"])
    dims = list(x.shape)
    pooled = ir.Shape(dims[:2] + [1] * (len(dims) - 2))
    new, current = [], x
    for op in steps[:-1]:
        inputs = [current, _count(graph, name, count)] if op == "Mul" else [current]
        step = ir.node(op, inputs, attributes={"axis": 1} if op == "Flatten" else None, name=f"{name}_{op.lower()}")
        out = step.outputs[0]
        out.name, out.type = f"{step.name}_out", x.type
        out.shape = ir.Shape(dims[:2]) if op == "Flatten" else pooled  # later passes read shapes
        new.append(step)
        current = out
    if new:
        graph.insert_before(node, new)
    old_inputs = list(node.inputs)
    for a in list(node.attributes):
        del node.attributes[a]
    node.op_type = steps[-1]
    node.resize_inputs(2 if steps[-1] == "Mul" else 1)
    node.replace_input_with(0, current)
    if steps[-1] == "Mul":
        node.replace_input_with(1, _count(graph, name, count))
    elif steps[-1] == "Flatten":
        node.attributes["axis"] = ir.AttrInt64("axis", 1)
    for old in old_inputs[1:]:  # a constant axes input nobody reads any more
        drop_if_unused(graph, old)


@register
class ReduceToPool(AccelcPass):
    name = "reduce-to-pool"

    def call(self, model: ir.Model) -> PassResult:
        graph = model.graph
        ops = ("ReduceMean", "ReduceMax", "ReduceSum")
        if any(is_op(n, *ops) and _rank(n.inputs[0]) is None for n in graph):
            ShapeInferencePass()(model)  # shapes of hand-built graphs; exporters write them
        reductions = [n for n in graph if is_op(n, *ops)]
        rewritten: dict[str, int] = {}
        warnings = []
        for node in reductions:
            why = _decline(node)
            if why is not None:
                warnings.append(f"{node.op_type} '{node.name}' kept: {why}")
                continue
            rewritten[node.op_type] = rewritten.get(node.op_type, 0) + 1
            _rewrite(graph, node)
        return PassResult(model, bool(rewritten), stats={"rewritten": rewritten}, warnings=warnings)
