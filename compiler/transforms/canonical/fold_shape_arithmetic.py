"""Shape arithmetic folded: `Shape -> Gather -> Unsqueeze -> Concat` (and Slice/Squeeze/Cast/...) chains evaluated.

PyTorch's exporters compute Reshape targets from the tensor's own shape: `x.view(x.size(0), -1)` and
`x.reshape(x.shape[0], -1)` become `Shape(x) -> Gather(0) -> Unsqueeze -> Concat([n], [-1]) -> Reshape(x, .)`, the
dynamo exporter writes `Shape(start, end)` slices, and ONNX's version converter rewrites an opset<13 LogSoftmax as
`Flatten -> LogSoftmax -> Reshape(., Shape(x))`. No target lowers Shape/Gather, and most need constant targets.

Each shape-valued tensor is evaluated symbolically: an entry is a static int or "dim i of value v" (a named symbolic
dim, e.g. the free batch). A tensor whose entries are all static becomes an initializer. A Reshape target that is
not all static is made constant when that is exact for every value the free dims take: an entry that is the input's
own dim at the same position becomes 0 (Reshape copies it, allowzero=0), and a single remaining symbolic entry that
is the input's only symbolic dim becomes -1 when the static entries account for all the other elements. What stays
symbolic is left as it was (the target then refuses it by name).

onnxscript's constant folder tracks shape values too, but not through Unsqueeze (the TorchScript chain) and it never
materializes a batch-dependent target; its materialize_reshape_shape rule needs the Reshape's output shape, which
ONNX shape inference cannot give for these chains, and it writes allowzero=1, which opset 13 lacks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir
from onnx_ir.passes.common import RemoveUnusedNodesPass, ShapeInferencePass

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, attr, const_array, is_op, replace_input

INT_TYPES = (ir.DataType.INT64, ir.DataType.INT32)


@dataclass(frozen=True)
class Dim:
    """A dim that is not static: axis `axis` of `value` (its symbolic name, if shape inference gave one)."""

    value: ir.Value
    axis: int
    symbol: str | None

    def same(self, other: object) -> bool:
        if not isinstance(other, Dim):
            return False
        return (self.value is other.value and self.axis == other.axis) or (
            self.symbol is not None and self.symbol == other.symbol)


Entry = int | Dim


@dataclass(frozen=True)
class Sym:
    """A shape-valued tensor: its entries, and whether it is a scalar (rank 0) or a vector (rank 1)."""

    entries: tuple[Entry, ...]
    scalar: bool = False

    @property
    def static(self) -> bool:
        return all(isinstance(e, int) for e in self.entries)


def dims_of(value: ir.Value | None) -> list[Entry] | None:
    """A tensor's shape as entries (None when its rank is unknown)."""
    if value is None or value.shape is None:
        return None
    out: list[Entry] = []
    for i, d in enumerate(value.shape):
        out.append(d if isinstance(d, int) else Dim(value, i, getattr(d, "value", None)))
    return out


def _ints(value: ir.Value | None) -> list[int] | None:
    a = const_array(value)
    return None if a is None or a.ndim > 1 or a.dtype.kind not in "iu" else [int(v) for v in a.reshape(-1)]


def _axes(node: ir.Node, index: int) -> list[int] | None:
    """Unsqueeze/Squeeze/Slice-style axes: the input (opset 13), else the attribute, else None."""
    if len(node.inputs) > index and node.inputs[index] is not None:
        return _ints(node.inputs[index])
    a = attr(node, "axes")
    return None if a is None else [int(v) for v in a]


class Evaluator:
    """Symbolic values of integer tensors, memoized per value."""

    def __init__(self) -> None:
        self.memo: dict[int, Sym | None] = {}

    def __call__(self, value: ir.Value | None) -> Sym | None:
        if value is None:
            return None
        key = id(value)
        if key not in self.memo:
            self.memo[key] = None  # a cycle cannot occur in a valid graph; this also stops a broken one
            self.memo[key] = self._eval(value)
        return self.memo[key]

    def _eval(self, value: ir.Value) -> Sym | None:
        const = const_array(value)
        if const is not None:
            if const.dtype.kind not in "iu" or const.ndim > 1:
                return None
            return Sym(tuple(int(v) for v in const.reshape(-1)), scalar=const.ndim == 0)
        node = value.producer()
        if node is None or node.domain not in ("", "ai.onnx"):
            return None
        handler = getattr(self, f"_{node.op_type.lower()}", None)
        return handler(node) if handler is not None else None

    def _shape(self, node: ir.Node) -> Sym | None:
        dims = dims_of(node.inputs[0])
        if dims is None:
            return None
        start, end = attr(node, "start", 0), attr(node, "end", None)
        return Sym(tuple(dims[slice(start, end)]))

    def _size(self, node: ir.Node) -> Sym | None:
        dims = dims_of(node.inputs[0])
        return Sym((int(np.prod(dims)),), scalar=True) if dims is not None and all(
            isinstance(d, int) for d in dims) else None

    def _gather(self, node: ir.Node) -> Sym | None:
        data, idx = self(node.inputs[0]), const_array(node.inputs[1])
        if data is None or data.scalar or idx is None or idx.ndim > 1 or attr(node, "axis", 0) != 0:
            return None
        n = len(data.entries)
        picked = [int(i) + n if int(i) < 0 else int(i) for i in idx.reshape(-1)]
        if not all(0 <= i < n for i in picked):
            return None
        return Sym(tuple(data.entries[i] for i in picked), scalar=idx.ndim == 0)

    def _unsqueeze(self, node: ir.Node) -> Sym | None:
        data = self(node.inputs[0])
        return Sym(data.entries) if data is not None and data.scalar and _axes(node, 1) in ([0], [-1]) else None

    def _squeeze(self, node: ir.Node) -> Sym | None:
        data = self(node.inputs[0])
        ok = data is not None and not data.scalar and len(data.entries) == 1 and _axes(node, 1) in (None, [0], [-1])
        return Sym(data.entries, scalar=True) if ok else None

    def _concat(self, node: ir.Node) -> Sym | None:
        parts = [self(v) for v in node.inputs]
        if attr(node, "axis", 0) not in (0, -1) or any(p is None or p.scalar for p in parts):
            return None
        return Sym(tuple(e for p in parts for e in p.entries))

    def _slice(self, node: ir.Node) -> Sym | None:
        data = self(node.inputs[0])
        params = [_ints(v) if v is not None else None for v in list(node.inputs[1:5]) + [None] * 4][:4]
        starts, ends, axes, steps = params
        if data is None or data.scalar or starts is None or ends is None or len(starts) != 1 or axes not in (
                None, [0], [-1]) or steps not in (None, [1]):
            return None
        return Sym(tuple(data.entries[slice(starts[0], ends[0])]))

    def _passthrough(self, node: ir.Node) -> Sym | None:
        return self(node.inputs[0])

    _identity = _passthrough

    def _cast(self, node: ir.Node) -> Sym | None:
        return self(node.inputs[0]) if attr(node, "to") in (int(t) for t in INT_TYPES) else None

    def _reshape(self, node: ir.Node) -> Sym | None:  # a shape vector reshaped to 1-D ([-1] or [n])
        data, target = self(node.inputs[0]), _ints(node.inputs[1])
        if data is None or target is None or len(target) != 1 or target[0] not in (-1, len(data.entries)):
            return None
        return Sym(data.entries)

    def _binary(self, node: ir.Node, fn) -> Sym | None:
        a, b = self(node.inputs[0]), self(node.inputs[1])
        if a is None or b is None or not (a.static and b.static):
            return None
        x, y = np.array(a.entries, np.int64), np.array(b.entries, np.int64)
        try:
            out = fn(x, y)
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return None
        return Sym(tuple(int(v) for v in np.atleast_1d(out)), scalar=a.scalar and b.scalar)

    def _add(self, node: ir.Node) -> Sym | None:
        return self._binary(node, np.add)

    def _sub(self, node: ir.Node) -> Sym | None:
        return self._binary(node, np.subtract)

    def _mul(self, node: ir.Node) -> Sym | None:
        return self._binary(node, np.multiply)

    def _div(self, node: ir.Node) -> Sym | None:  # ONNX integer Div truncates; shapes are >= 0 where it matters
        def trunc(x, y):
            if (y == 0).any() or (x < 0).any() or (y < 0).any():
                raise ValueError("not a plain shape division")
            return x // y
        return self._binary(node, trunc)


def reshape_target(node: ir.Node, sym: Sym) -> list[int] | None:
    """A constant target that makes this Reshape compute what the symbolic target does, for every free dim."""
    dims = dims_of(node.inputs[0])
    if dims is None or sym.scalar:
        return None
    allowzero = attr(node, "allowzero", 0)
    out: list[Entry] = list(sym.entries)
    for i, e in enumerate(out):
        if isinstance(e, Dim) and i < len(dims) and e.same(dims[i]) and not allowzero:
            out[i] = 0  # copies the input's dim i
    symbolic = [i for i, e in enumerate(out) if isinstance(e, Dim)]
    if len(symbolic) == 1 and -1 not in out and not allowzero:
        free = [d for d in dims if isinstance(d, Dim)]
        static_in = int(np.prod([d for d in dims if isinstance(d, int)]))
        copied = [dims[i] for i, e in enumerate(out) if e == 0]
        static_out = int(np.prod([e for e in out if isinstance(e, int) and e > 0])) * int(
            np.prod([d for d in copied if isinstance(d, int)]))
        if len(free) == 1 and out[symbolic[0]].same(free[0]) and not any(isinstance(d, Dim) for d in copied) and (
                static_out == static_in):
            out[symbolic[0]] = -1  # Reshape infers it: the input's only free dim, all other elements accounted for
    return [int(e) for e in out] if all(isinstance(e, int) for e in out) else None


@register
class FoldShapeArithmetic(AccelcPass):
    """Integer shape tensors evaluated symbolically: static ones become initializers, Reshape targets constants."""

    name = "fold-shape-arithmetic"

    def call(self, model: ir.Model) -> PassResult:
        graph = model.graph
        shape_ops = ("Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Reshape")
        if not any(is_op(n, *shape_ops) for n in graph):
            return PassResult(model, False, stats={"folded": 0, "reshape_targets": 0})
        _infer_shapes(model)
        evaluate = Evaluator()
        folded = targets = 0
        for node in list(graph):
            if is_op(node, "Reshape") and node.inputs[1] is not None and const_array(node.inputs[1]) is None:
                sym = evaluate(node.inputs[1])
                target = reshape_target(node, sym) if sym is not None else None
                if target is not None:
                    init = add_initializer(graph, f"{node.name or 'reshape'}_shape", np.array(target), dtype=np.int64)
                    replace_input(graph, node, 1, init)
                    targets += 1
                continue
            for out in node.outputs:
                if out.is_graph_output() or out.dtype not in INT_TYPES or not is_op(node, *shape_ops):
                    continue
                sym = evaluate(out)
                if sym is None or not sym.static or out.const_value is not None:
                    continue
                array = np.array(sym.entries[0] if sym.scalar else list(sym.entries), dtype=out.dtype.numpy())
                init = add_initializer(graph, f"{out.name or 'shape'}_folded", array, dtype=None)
                out.replace_all_uses_with(init)
                folded += 1
        if folded or targets:
            RemoveUnusedNodesPass()(model)
        return PassResult(model, bool(folded or targets), stats={"folded": folded, "reshape_targets": targets})


def _infer_shapes(model: ir.Model) -> None:
    """Intermediate shapes (the frontend's graph has them only where the exporter wrote value_info)."""
    with contextlib.suppress(Exception):  # shapes are a help here; without them nothing is folded
        ShapeInferencePass(strict_mode=False)(model)
