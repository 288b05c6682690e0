"""Sink layout Transposes: move each Transpose down past the ops that do not care about axis order, so that
pairs meet and cancel.

Channels-last exports (Keras, tf2onnx) wrap every Conv and pool in Transpose(0,3,1,2) ... Transpose(0,2,3,1)
and do the bias, BatchNorm and activation in between channels-last. Moving a Transpose below such an op is exact:
  - elementwise ops (Relu, Cast, Clip, ...): op(T(x)) = T(op(x));
  - binary/variadic elementwise ops whose other inputs are constants (Add of a bias, BatchNorm's Sub/Mul/Add) or
    Transposes with the same perm: the constants are transposed by the inverse perm (after right-aligning them
    to the tensor's rank, as broadcasting does);
  - Softmax/LogSoftmax/Hardmax (opset >= 13) and Concat: their axis is renumbered;
  - Reduce*: the axes are renumbered; with keepdims=0 the Transpose left below permutes the kept axes (none for
    a global average over H and W).
A Transpose reaching another composes with it; an identity Transpose is removed. A Transpose moves only when every
reader of its output can take it, so nothing is moved past a Conv, Reshape or graph output; what is left moves
data and is refused by targets that cannot (fpga).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, attr, const_array, is_op, op_counts, replace_input, set_ints

UNARY = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Celu", "Softplus", "Softsign", "HardSigmoid",
         "HardSwish", "ThresholdedRelu", "Mish", "Cast", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal", "Erf",
         "Floor", "Ceil", "Round", "Sign", "Identity", "Clip", "Sin", "Cos"}
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu"}
AXIS_OPS = {"Softmax", "LogSoftmax", "Hardmax"}
REDUCE = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
          "ReduceLogSumExp", "ReduceSumSquare"}
# Reduce* take their axes as an input from these opsets on (ReduceSum from 13), as an attribute before.
AXES_INPUT_FROM = 18


@register
class SinkTransposes(AccelcPass):
    name = "sink-transposes"

    def call(self, model: ir.Model) -> PassResult:
        before = op_counts(model).get("Transpose", 0)
        if not before:
            return PassResult(model, False)
        moved = sink_transposes(model.graph, model.opset_imports.get("", 13))
        after = op_counts(model).get("Transpose", 0)
        # What is left may still be absorbed (absorb-input-layout, transpose-into-dense); the fpga check names the rest.
        return PassResult(model, bool(moved), stats={"transposes_before": before, "transposes_after": after,
                                                     "moved": moved})


def sink_transposes(graph: ir.Graph, opset: int) -> int:
    """Sink, compose and drop Transposes until none moves; returns how many steps were taken."""
    steps, budget = 0, 20 * (len(graph) + 1)
    changed = True
    while changed and steps < budget:
        changed = False
        for node in list(graph):
            if node.graph is graph and is_op(node, "Transpose") and _step(graph, node, opset):
                steps, changed = steps + 1, True
    return steps


def perm_of(node: ir.Node) -> list[int] | None:
    p = attr(node, "perm")
    if p is None:  # default: reverse the axes
        x = node.inputs[0]
        return None if x is None or x.shape is None else list(range(len(x.shape)))[::-1]
    return [int(a) for a in p]


def inverse(perm: list[int]) -> list[int]:
    return [int(i) for i in np.argsort(perm)]


def _step(graph: ir.Graph, t: ir.Node, opset: int) -> bool:
    p = perm_of(t)
    if p is None:
        return False
    y = t.outputs[0]
    if p == list(range(len(p))):
        return bypass(graph, t, t.inputs[0])
    src = t.inputs[0].producer() if t.inputs[0] is not None else None
    if src is not None and is_op(src, "Transpose") and perm_of(src) is not None:
        q = perm_of(src)
        t.replace_input_with(0, src.inputs[0])
        set_ints(t, "perm", [q[i] for i in p])
        if not src.outputs[0].uses() and src.outputs[0] not in graph.outputs:
            graph.remove(src, safe=True)
        return True
    if y in graph.outputs:
        return False
    uses = list(y.uses())
    if not uses:
        graph.remove(t, safe=True)
        return True
    readers = [u.node for u in {id(u.node): u for u in uses}.values()]
    if all(is_op(r, "Transpose") for r in readers):
        return False  # each composes with this one in its own step
    plans = [_plan(graph, r, p, opset) for r in readers]
    if any(plan is None for plan in plans):
        return False
    for plan in plans:
        plan()
    if not y.uses():
        graph.remove(t, safe=True)
    return True


def _plan(graph: ir.Graph, node: ir.Node, p: list[int], opset: int) -> Callable[[], None] | None:
    """How to move Transpose(perm p) below this reader of its output, or None where it cannot pass."""
    if node.domain not in ("", "ai.onnx") or len(node.outputs) != 1:
        return None
    if is_op(node, "Transpose"):
        return lambda: None  # the reader composes with it in its own step
    if node.op_type in UNARY:
        return _elementwise(graph, node, p, data_inputs=1)
    if node.op_type in ELEMENTWISE:
        return _elementwise(graph, node, p, data_inputs=len(node.inputs))
    if node.op_type in AXIS_OPS and opset >= 13:
        axis = _normalize(attr(node, "axis", -1), len(p))
        return _with_inputs(graph, node, p, 1, lambda: _set_axis(node, p[axis]), p)
    if node.op_type == "Concat":
        axis = _normalize(attr(node, "axis", 0), len(p))
        return _elementwise(graph, node, p, len(node.inputs), lambda: _set_axis(node, p[axis]), broadcast=False)
    if node.op_type in REDUCE:
        return _reduce(graph, node, p, opset)
    return None


def _normalize(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _set_axis(node: ir.Node, axis: int) -> None:
    node.attributes["axis"] = ir.AttrInt64("axis", axis)


def _elementwise(graph, node, p, data_inputs, also=None, broadcast=True):
    """A reader whose first data_inputs inputs are each this Transpose's output, a Transpose with the same perm,
    or a constant (transposed by the inverse perm); its output gets the Transpose."""
    for value in node.inputs[:data_inputs]:
        if value is None or _transposed_input(value, p) is not None:
            continue
        c = const_array(value)
        if c is None or c.ndim > len(p) or (not broadcast and c.ndim != len(p)):
            return None
    return _with_inputs(graph, node, p, data_inputs, also, p)


def _transposed_input(value: ir.Value, p: list[int]) -> ir.Value | None:
    src = value.producer()
    if src is not None and is_op(src, "Transpose") and perm_of(src) == p:
        return src.inputs[0]
    return None


def _with_inputs(graph, node, p, data_inputs, also, out_perm):
    def apply() -> None:
        inv = inverse(p)
        for i, value in enumerate(list(node.inputs[:data_inputs])):
            if value is None:
                continue
            src = _transposed_input(value, p)
            if src is not None:
                node.replace_input_with(i, src)
                continue
            c = const_array(value)
            if c.size == 1 and c.ndim == 0:
                continue
            c = np.transpose(c.reshape((1,) * (len(p) - c.ndim) + c.shape), inv)
            replace_input(graph, node, i, add_initializer(graph, f"{value.name}_perm", c, dtype=None))
        if also is not None:
            also()
        y = node.outputs[0]
        if y.shape is not None and len(y.shape) == len(p):
            set_shape(y, [y.shape[i] for i in inv])
        if out_perm is not None and out_perm != list(range(len(out_perm))):
            transpose_output(graph, node, out_perm)

    return apply


def _reduce(graph, node, p, opset):
    rank = len(p)
    in_input = node.op_type == "ReduceSum" and opset >= 13 or opset >= AXES_INPUT_FROM
    axes_value = node.inputs[1] if in_input and len(node.inputs) > 1 else None
    if in_input and axes_value is not None:
        axes = const_array(axes_value)
        if axes is None:
            return None
        axes = [int(a) for a in axes.reshape(-1)]
    else:
        axes = attr(node, "axes")
    if not axes:
        if attr(node, "noop_with_empty_axes", 0):
            return None
        axes = list(range(rank))
    axes = sorted(_normalize(int(a), rank) for a in axes)
    new_axes = sorted(p[a] for a in axes)
    keep = attr(node, "keepdims", 1)
    kept_y = [p[i] for i in range(rank) if i not in axes]
    out_perm = p if keep else [sorted(kept_y).index(a) for a in kept_y]

    def set_axes() -> None:
        if in_input and axes_value is not None:
            axes = add_initializer(graph, f"{node.name}_axes", np.array(new_axes, np.int64), dtype=None)
            replace_input(graph, node, 1, axes)
        elif not in_input:
            set_ints(node, "axes", new_axes)

    apply = _with_inputs(graph, node, p, 1, set_axes, None)

    def run() -> None:
        y = node.outputs[0]
        shape = list(y.shape) if y.shape is not None else None
        apply()
        if shape is not None and len(shape) == len(out_perm):
            set_shape(y, [shape[i] for i in inverse(out_perm)])
        elif shape is not None:
            y.shape = None
        if out_perm != list(range(len(out_perm))):
            transpose_output(graph, node, out_perm)

    return run


def transpose_output(graph: ir.Graph, node: ir.Node, perm: list[int]) -> ir.Node:
    """Insert Transpose(perm) after node: its readers (and the graph output it may be) read the Transpose."""
    y = node.outputs[0]
    t = ir.node("Transpose", [y], {"perm": [int(a) for a in perm]}, name=unique_node_name(graph, f"{node.name}_T"))
    out = t.outputs[0]
    out.dtype = y.dtype
    if y.shape is not None and len(y.shape) == len(perm):
        set_shape(out, [y.shape[i] for i in perm])
    graph.insert_after(node, t)
    for use in list(y.uses()):
        if use.node is not t:
            use.node.replace_input_with(use.idx, out)
    out.name = unique_value_name(graph, f"{y.name}_T")
    if y in graph.outputs:
        i = graph.outputs.index(y)
        name = y.name
        y.name = unique_value_name(graph, f"{name}_pre")
        out.name = name
        graph.outputs[i] = out
    return t


def set_shape(value: ir.Value, dims: list) -> None:
    """A value's new shape; only where its type is known (the checker refuses a value_info without one)."""
    value.shape = ir.Shape(dims) if value.dtype is not None else None


def bypass(graph: ir.Graph, node: ir.Node, replacement: ir.Value) -> bool:
    """Remove a node whose output equals `replacement`; False where it cannot (a graph output that is an input)."""
    y = node.outputs[0]
    if y in graph.outputs:
        if replacement in graph.inputs or replacement in graph.outputs or replacement.is_initializer():
            return False
        i, name = graph.outputs.index(y), y.name
        y.name = unique_value_name(graph, f"{name}_bypassed")
        replacement.name = name
        replacement.type = replacement.type or y.type  # a graph output is typed
        replacement.shape = replacement.shape or y.shape
        graph.outputs[i] = replacement
    y.replace_all_uses_with(replacement)
    graph.remove(node, safe=True)
    return True


def unique_value_name(graph: ir.Graph, base: str) -> str:
    taken = {v.name for n in graph for v in [*n.inputs, *n.outputs] if v is not None}
    taken |= {v.name for v in graph.inputs} | set(graph.initializers)
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def unique_node_name(graph: ir.Graph, base: str) -> str:
    taken = {n.name for n in graph}
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name
