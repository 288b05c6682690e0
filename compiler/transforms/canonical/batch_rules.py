"""Which ops keep samples apart: the per-op rules the free-batch pass follows the batch axis with.

A rule looks at one node some of whose inputs carry the batch (at axis 0) and returns None when every output
carries it at axis 0 again with no sample reaching another (a Conv, an Add of a per-channel bias, a Softmax over
the classes), or the reason it does not (a reduction over axis 0, a Transpose moving it, a Reshape merging it
with the features). An op without a rule is taken to mix samples: the batch stays fixed, as exported.

Shape values (what `Shape` of a batched tensor computes) are followed too, entry by entry: an int, BATCH (the
batch size, which a free batch leaves to run time) or None (computed from the batch some other way).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from accelc.transforms.rewrite import attr, const_array

BATCH = type("Batch", (), {"__repr__": lambda self: "batch"})()  # the batch size inside a shape value
END = 2**31 - 1  # a Slice end at or past this reads to the end of the axis (exporters write INT64_MAX)


@dataclass
class Flow:
    """What the analysis knows so far: the values carrying the batch at axis 0, the shape values, the fixes that
    free the batch (applied only when no node needs it fixed)."""

    batch: int
    batched: set[ir.Value] = field(default_factory=set)
    shapes: dict[ir.Value, np.ndarray] = field(default_factory=dict)  # object arrays of int | BATCH | None
    fixes: list[tuple[ir.Node, Callable[[], None]]] = field(default_factory=list)

    def has(self, v: ir.Value | None) -> bool:
        return v is not None and v in self.batched

    def entries(self, v: ir.Value | None) -> np.ndarray | None:
        """A shape value's entries, or a constant integer tensor's numbers (as an object array), or None."""
        if v is None:
            return None
        if v in self.shapes:
            return self.shapes[v]
        c = const_array(v)
        return None if c is None or c.dtype.kind not in "iub" else np.array(c.tolist(), dtype=object).reshape(c.shape)

    def ints(self, v: ir.Value | None) -> list[int] | None:
        """A 1-D (or scalar) input whose entries are all known ints, or None."""
        e = self.entries(v)
        if e is None or any(not isinstance(x, int) for x in e.reshape(-1)):
            return None
        return [int(x) for x in e.reshape(-1)]


def rank(v: ir.Value | None) -> int | None:
    if v is None:
        return None
    if v.shape is not None:
        return len(v.shape)
    c = const_array(v)
    return None if c is None else c.ndim


def dims(v: ir.Value | None) -> list | None:
    if v is not None and v.shape is not None:
        return list(v.shape)
    c = const_array(v)
    return None if c is None else list(c.shape)


def _axis(node: ir.Node, default: int, r: int | None) -> int | None:
    a = attr(node, "axis", default)
    return None if r is None else a + r if a < 0 else a


def _axes(node: ir.Node, flow: Flow, r: int | None, index: int = 1) -> list[int] | str | None:
    """Normalized axes from the `axes` attribute or input `index`; None when absent, "?" when not constant."""
    axes = attr(node, "axes")
    if axes is None and len(node.inputs) > index and node.inputs[index] is not None:
        axes = flow.ints(node.inputs[index])
        if axes is None:
            return "?"
    if axes is None:
        return None
    return "?" if r is None else [a + r if a < 0 else a for a in axes]


# ---------------------------------------------------------------------------------------------- the rules


def _per_sample(node: ir.Node, flow: Flow) -> str | None:
    """Conv, pooling, normalization over a sample: only the data input may carry the batch."""
    if any(flow.has(v) for v in node.inputs[1:]):
        return "takes a parameter from the batch"
    if node.op_type == "BatchNormalization" and attr(node, "training_mode", 0):
        return "normalizes over the batch (training mode)"
    return None


def _elementwise(node: ir.Node, flow: Flow) -> str | None:
    """Broadcasting ops: a batched operand must line its axis 0 up with the output's, any other broadcast over it."""
    out = max((r for r in (rank(v) for v in node.inputs if v is not None) if r is not None), default=None)
    for v in node.inputs:
        if v is None:
            continue
        r, d = rank(v), dims(v)
        if r is None:
            return f"has an operand of unknown shape ('{v.name}')"
        if flow.has(v) and r != out:
            return f"broadcasts a rank-{r} batched tensor against rank {out}"
        if not flow.has(v) and r == out and d[0] != 1:
            return f"applies a tensor of shape {d} sample by sample position (its axis 0 is the batch's)"
    if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.inputs) > 1:
        scale = dims(node.inputs[1])
        if scale and len(scale) == 1 and scale[0] > 1 and _axis(node, 1, rank(node.inputs[0])) == 0:
            return "quantizes per position along the batch axis"
    return None


def _along_axis(default: int) -> Callable[[ir.Node, Flow], str | None]:
    """Softmax, ArgMax, Split, Concat, ...: fine along any axis but the batch's."""

    def rule(node: ir.Node, flow: Flow) -> str | None:
        data = next((v for v in node.inputs if flow.has(v)), node.inputs[0])
        if _axis(node, default, rank(data)) in (0, None):
            return "works along the batch axis"
        if node.op_type == "Concat" and not all(flow.has(v) for v in node.inputs if v is not None):
            return "joins the batch with a tensor that has none"
        if any(flow.has(v) for v in node.inputs[1:]) and node.op_type != "Concat":
            return "takes a parameter from the batch"
        return None

    return rule


def _reduce(node: ir.Node, flow: Flow) -> str | None:
    axes = _axes(node, flow, rank(node.inputs[0]))
    if axes == "?":
        return "reduces over axes that are not constant"
    if not axes:
        return None if attr(node, "noop_with_empty_axes", 0) else "reduces over every axis, the batch's too"
    return "reduces over the batch axis" if 0 in axes else None


def _gemm(node: ir.Node, flow: Flow) -> str | None:
    if not flow.has(node.inputs[0]) or attr(node, "transA", 0) or any(flow.has(v) for v in node.inputs[1:]):
        return "multiplies across samples"
    c = dims(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    if c is not None and len(c) == 2 and c[0] != 1:
        return f"adds a bias of shape {c} sample by sample position"
    return None


def _matmul(node: ir.Node, flow: Flow) -> str | None:
    a, b = (node.inputs[0], node.inputs[1]) if node.op_type != "QLinearMatMul" else (node.inputs[0], node.inputs[3])
    ra, rb, da, db = rank(a), rank(b), dims(a), dims(b)
    if ra is None or rb is None:
        return "multiplies tensors of unknown rank"
    if flow.has(a) and flow.has(b):
        return None if ra == rb >= 3 else "multiplies samples with each other"
    if flow.has(a):
        return None if ra >= 2 and (rb <= 2 or rb < ra or (rb == ra and db[0] == 1)) else "contracts over the batch"
    return None if rb >= 3 and (ra < rb or da[0] == 1) else "contracts over the batch"


def _flatten(node: ir.Node, flow: Flow) -> str | None:
    axis = _axis(node, 1, rank(node.inputs[0]))
    if axis is None or axis >= 1:
        return None
    if flow.batch != 1:
        return "flattens the batch into the features"
    # Flatten(axis=0) of a batch of 1 is [1, features]: exactly what Flatten(axis=1) computes, at any batch.
    flow.fixes.append((node, lambda: node.attributes.__setitem__("axis", ir.AttrInt64("axis", 1))))
    return None


def _transpose(node: ir.Node, flow: Flow) -> str | None:
    r = rank(node.inputs[0])
    perm = attr(node, "perm") or (list(range(r))[::-1] if r else None)
    return None if perm and perm[0] == 0 else f"moves the batch axis (perm={perm})"


def _squeeze(node: ir.Node, flow: Flow) -> str | None:
    axes = _axes(node, flow, rank(node.inputs[0]))
    if axes in (None, "?"):
        return "squeezes every axis of size 1, the batch's too when it is 1"
    return "removes the batch axis" if 0 in axes else None


def _unsqueeze(node: ir.Node, flow: Flow) -> str | None:
    r = rank(node.inputs[0])
    n = attr(node, "axes") or flow.ints(node.inputs[1] if len(node.inputs) > 1 else None)
    axes = _axes(node, flow, None if r is None or n is None else r + len(n))
    return "inserts an axis before the batch axis" if axes in (None, "?") or 0 in axes else None


def _gather(node: ir.Node, flow: Flow) -> str | None:
    data, indices = node.inputs[0], node.inputs[1]
    axis = _axis(node, 0, rank(data))
    if flow.has(data) and not flow.has(indices) and axis not in (0, None):
        return None
    if not flow.has(data) and flow.has(indices) and axis == 0 and node.op_type == "Gather":
        return None  # a lookup table indexed by the samples (an embedding)
    return "picks along the batch axis"


def _cumsum(node: ir.Node, flow: Flow) -> str | None:
    axis, r = flow.ints(node.inputs[1]), rank(node.inputs[0])
    return None if axis and r and axis[0] % r else "accumulates along the batch axis"


def _gather_elements(node: ir.Node, flow: Flow) -> str | None:
    both = flow.has(node.inputs[0]) and flow.has(node.inputs[1])
    return None if both and _axis(node, 0, rank(node.inputs[0])) not in (0, None) else "picks along the batch axis"


def _slice(node: ir.Node, flow: Flow) -> str | None:
    if any(flow.has(v) for v in node.inputs[1:]):
        return "slices by the batch"
    starts, ends = flow.entries(node.inputs[1]), flow.entries(node.inputs[2])
    axes = flow.ints(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] is not None else None
    steps = flow.ints(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] is not None else None
    if starts is None or ends is None:
        return "slices by bounds that are not constant"
    r = rank(node.inputs[0])
    axes = list(range(len(starts))) if axes is None else [a + r if a < 0 and r else a for a in axes]
    for i, a in enumerate(axes):
        if a == 0:
            start, end, step = starts[i], ends[i], steps[i] if steps else 1
            if not (start == 0 and step == 1 and (end is BATCH or (isinstance(end, int) and end >= END))):
                return "slices the batch axis"
    return None


def _pad(node: ir.Node, flow: Flow) -> str | None:
    pads = attr(node, "pads") or flow.ints(node.inputs[1] if len(node.inputs) > 1 else None)
    axes = flow.ints(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] is not None else None
    if pads is None:
        return "pads by amounts that are not constant"
    r = rank(node.inputs[0])
    axes = list(range(len(pads) // 2)) if axes is None else [a + r if a < 0 and r else a for a in axes]
    at = axes.index(0) if 0 in axes else None
    return None if at is None or pads[at] == pads[at + len(axes)] == 0 else "pads the batch axis"


def _tile(node: ir.Node, flow: Flow) -> str | None:
    repeats = flow.ints(node.inputs[1])
    return None if repeats and repeats[0] == 1 else "repeats the batch axis"


def _expand(node: ir.Node, flow: Flow) -> str | None:
    data, shape, r = node.inputs[0], flow.entries(node.inputs[1]), rank(node.inputs[0])
    if shape is None or r is None or shape.ndim != 1 or any(x is None for x in shape[1:]):
        return "expands to a shape that is not followed"
    lead = shape[0] if len(shape) >= r else 1  # what lands on the output's axis 0
    if flow.has(data):
        if len(shape) > r:
            return "broadcasts the batch to another axis"
        return None if lead is BATCH or lead == 1 else f"broadcasts the batch axis to {lead}"
    no_batch = r < len(shape) or dims(data)[0] == 1
    return None if lead is BATCH and no_batch and BATCH not in list(shape[1:]) else "builds a batch of fixed size"


def _constant_of_shape(node: ir.Node, flow: Flow) -> str | None:
    shape = flow.entries(node.inputs[0])
    ok = shape is not None and len(shape) and shape[0] is BATCH and all(isinstance(x, int) for x in shape[1:])
    return None if ok else "builds a batch of fixed size"


def _resize(node: ir.Node, flow: Flow) -> str | None:
    if any(flow.has(v) for v in node.inputs[1:]):
        return "resizes by the batch"
    scales = const_array(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    sizes = flow.entries(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] is not None else None
    if scales is not None and scales.size and float(scales.reshape(-1)[0]) == 1.0:
        return None
    if sizes is not None and len(sizes) and sizes[0] is BATCH:
        return None
    return "resizes to a fixed batch size (its sizes input names the batch)"


def _layer_norm(node: ir.Node, flow: Flow) -> str | None:
    if any(flow.has(v) for v in node.inputs[1:]):
        return "takes a parameter from the batch"
    return "normalizes over the batch axis" if _axis(node, -1, rank(node.inputs[0])) in (0, None) else None


_UNARY = ("Relu Sigmoid Tanh Exp Log Abs Neg Sqrt Reciprocal Erf Floor Ceil Round Sign Sin Cos Tan Asin Acos "
          "Atan Sinh Cosh Asinh Acosh Atanh LeakyRelu Elu Selu Celu ThresholdedRelu HardSigmoid HardSwish Softplus "
          "Softsign Gelu Mish Not IsNaN IsInf Identity Cast CastLike Dropout Clip Shrink BitwiseNot")
_BINARY = ("Add Sub Mul Div Pow Max Min Sum Mean Where Equal Greater Less GreaterOrEqual LessOrEqual And Or Xor "
           "Mod BitShift PRelu QuantizeLinear DequantizeLinear BitwiseAnd BitwiseOr BitwiseXor "
           "Quant BipolarQuant Trunc")  # the last three: QONNX's quantizers, elementwise with broadcast parameters
_PER_SAMPLE = ("Conv ConvTranspose ConvInteger QLinearConv MaxPool AveragePool LpPool GlobalAveragePool "
               "GlobalMaxPool GlobalLpPool LRN InstanceNormalization GroupNormalization BatchNormalization "
               "DepthToSpace SpaceToDepth MultiThreshold")
_REDUCE = ("ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp "
           "ReduceSumSquare")

RULES: dict[str, Callable[[ir.Node, Flow], str | None]] = {
    **dict.fromkeys((_UNARY + " " + _BINARY).split(), _elementwise),
    **dict.fromkeys(_PER_SAMPLE.split(), _per_sample),
    **dict.fromkeys(_REDUCE.split(), _reduce),
    **dict.fromkeys("Softmax LogSoftmax Hardmax LpNormalization TopK".split(), _along_axis(-1)),
    **dict.fromkeys("ArgMax ArgMin Split".split(), _along_axis(0)),
    "Concat": _along_axis(0),  # axis is required
    "CumSum": _cumsum,
    "Gather": _gather,
    "GatherElements": _gather_elements,
    "Gemm": _gemm,
    **dict.fromkeys("MatMul MatMulInteger QLinearMatMul".split(), _matmul),
    "Flatten": _flatten,
    "Transpose": _transpose,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Slice": _slice,
    "Pad": _pad,
    "Tile": _tile,
    "Expand": _expand,
    "ConstantOfShape": _constant_of_shape,
    "Resize": _resize,
    "LayerNormalization": _layer_norm,
}
# The inputs of an op that may be a shape value holding the batch size (elsewhere it would be a number that
# changes with the batch, such as x / x.size(0)).
SHAPE_INPUTS = {"Reshape": {1}, "Expand": {1}, "ConstantOfShape": {0}, "Slice": {1, 2}, "Resize": {3}}


# ---------------------------------------------------------------------------------------------- shape values


def _arith(op: str) -> Callable[[object, object], object]:
    fn = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
          "Div": lambda a, b: int(a / b) if b else None, "Max": max, "Min": min}[op]  # ONNX: toward zero
    return lambda a, b: fn(a, b) if isinstance(a, int) and isinstance(b, int) else None


def shape_value(node: ir.Node, flow: Flow) -> np.ndarray | None:
    """What a shape-arithmetic node computes from shape values and constants, or None when not followed."""
    ins = [flow.entries(v) if v is not None else None for v in node.inputs]
    op = node.op_type
    if op == "Shape":
        d = dims(node.inputs[0])
        if d is None:
            return None
        start, end = attr(node, "start", 0), attr(node, "end", None)
        full = [BATCH if i == 0 else x if isinstance(x, int) else None for i, x in enumerate(d)]
        return np.array(full[start:end] if end is not None else full[start:], dtype=object)
    if ins[0] is None or (op not in ("Cast", "Identity", "Squeeze", "Unsqueeze") and any(x is None for x in ins)):
        return None
    if op in ("Cast", "Identity"):
        return ins[0]
    if op == "Gather" and attr(node, "axis", 0) == 0 and ins[0].ndim == 1:
        return np.asarray(np.take(ins[0], np.array(ins[1].tolist(), dtype=np.int64)), dtype=object)
    if op == "Concat" and all(x.ndim == 1 for x in ins):
        return np.concatenate(ins)
    if op == "Unsqueeze" and ins[0].ndim == 0:
        return ins[0].reshape(1)
    if op == "Squeeze" and ins[0].shape == (1,):
        return ins[0].reshape(())
    if op == "Slice" and ins[0].ndim == 1 and all(isinstance(x, int) for i in ins[1:] for x in i.reshape(-1)):
        starts, ends = ins[1].reshape(-1), ins[2].reshape(-1)
        steps = ins[4].reshape(-1) if len(ins) > 4 else [1]
        return ins[0][int(starts[0]) : int(min(ends[0], END)) : int(steps[0])]
    if op == "ReduceProd" and ins[0].ndim == 1 and attr(node, "axes", [0]) in ([0], [-1]) and len(ins) == 1:
        prod = math.prod(x for x in ins[0]) if all(isinstance(x, int) for x in ins[0]) else None
        return np.array([prod] if attr(node, "keepdims", 1) else prod, dtype=object)  # tf2onnx's Flatten
    if op in ("Add", "Sub", "Mul", "Div", "Max", "Min") and len(ins) == 2:
        a, b = np.broadcast_arrays(ins[0], ins[1])
        return np.array([_arith(op)(x, y) for x, y in zip(a.reshape(-1), b.reshape(-1))], dtype=object).reshape(
            a.shape)
    return None
