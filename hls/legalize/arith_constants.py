"""Elementwise arithmetic with a constant, in the form hls4ml lowers right: Sub/Div by a constant -> Add/Mul.

hls4ml folds `x op c` into its ApplyAlpha (scale/bias) layer for Add/Sub/Mul with either operand constant
and Div with a constant divisor; checked in C simulation, scalar, per-channel (C,1,1) and full-shape
constants are right on rank 2-4 tensors. Two things go wrong, and this pass mends them exactly:

* a constant with the batch axis, e.g. torch's (1, C, 1, 1) normalisation, crashes QONNX's channels-last
  conversion ("input operand has more dimensions than allowed"): its leading 1s are dropped, which
  broadcasting makes a no-op whenever the constant's rank is at least the other operand's;
* ``x - c`` becomes ``x + (-c)`` (negation is exact) and ``x / c`` becomes ``x * (1/c)`` (one float rounding,
  the same thing hls4ml does inside ApplyAlpha), so the support check has one rule for each.

The rewritten node produces the same tensor, so it keeps its name. ``c - x`` stays as it is (hls4ml lowers it
with scale -1); ``c / x`` is not linear and is left for the support check to refuse.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, const_array, is_op, replace_input

OPS = ("Add", "Sub", "Mul", "Div")


def _const_operand(node: ir.Node) -> int | None:
    """The index of the one constant operand (None when neither or both are constant)."""
    consts = [i for i in (0, 1) if const_array(node.inputs[i]) is not None]
    return consts[0] if len(consts) == 1 else None


def _squeezed(c: np.ndarray, other_rank: int | None) -> np.ndarray:
    """Drop leading 1s while the constant's rank is at least the other operand's (output shape unchanged)."""
    while other_rank is not None and c.ndim >= other_rank and c.ndim > 0 and c.shape[0] == 1:
        c = c.reshape(c.shape[1:])
    return c


@register
class ArithConstants(AccelcPass):
    name = "arith-constants"

    def call(self, model: ir.Model) -> PassResult:
        graph = model.graph
        stats = {"sub_to_add": 0, "div_to_mul": 0, "squeezed": 0}
        for node in list(graph):
            if not is_op(node, *OPS) or len(node.inputs) != 2:
                continue
            k = _const_operand(node)
            if k is None:
                continue
            c = const_array(node.inputs[k])
            if c.dtype != np.float32:  # the new initializer is float32
                continue
            other = node.inputs[1 - k]
            new = _squeezed(c, None if other.shape is None else len(other.shape))
            if node.op_type == "Sub" and k == 1:
                new, node.op_type = -new, "Add"
                stats["sub_to_add"] += 1
            elif node.op_type == "Div" and k == 1 and np.all(new != 0):
                new, node.op_type = (1.0 / new).astype(c.dtype), "Mul"
                stats["div_to_mul"] += 1
            elif new.shape == c.shape:
                continue
            stats["squeezed"] += int(new.shape != c.shape)
            replace_input(graph, node, k, add_initializer(graph, f"{node.name}_const", new.astype(np.float32)))
        return PassResult(model, any(stats.values()), stats=stats)
