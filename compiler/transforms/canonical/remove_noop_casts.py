"""Casts that change nothing are removed: a Cast to the type its input already has (float -> float on a float
tensor, int64 -> int64 on a shape), a CastLike between two tensors of one type, and an exact round trip through a
wider type (float -> double -> float, int32 -> int64 -> int32), which returns every value unchanged.

Exporters write these where the framework's dtype is implicit (torch's `.float()` on a float tensor, dtype
promotion guards in the dynamo exporter, the version converter's Casts of shape tensors). The first two are
onnxscript's no-op Cast rule (and its constant folder's CastLike rule, applied here without folding anything
else); the round trip is checked here against a table of exact widenings. Casts that round, truncate or saturate
(float -> int, double -> float of a double input, float -> float16) stay.
"""

from __future__ import annotations

import contextlib

import onnx_ir as ir
from onnx_ir.passes.common import IdentityEliminationPass, RemoveUnusedNodesPass, ShapeInferencePass
from onnxscript import rewriter
from onnxscript.rewriter.rules.common import no_op_cast_rule

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import attr, is_op, op_counts

T = ir.DataType
# narrow -> the types that hold every one of its values exactly.
EXACT_WIDENING: dict[ir.DataType, set[ir.DataType]] = {
    T.FLOAT: {T.DOUBLE},
    T.FLOAT16: {T.FLOAT, T.DOUBLE},
    T.BFLOAT16: {T.FLOAT, T.DOUBLE},
    T.INT8: {T.INT16, T.INT32, T.INT64, T.FLOAT16, T.FLOAT, T.DOUBLE},
    T.UINT8: {T.INT16, T.UINT16, T.INT32, T.UINT32, T.INT64, T.UINT64, T.FLOAT16, T.FLOAT, T.DOUBLE},
    T.INT16: {T.INT32, T.INT64, T.FLOAT, T.DOUBLE},
    T.UINT16: {T.INT32, T.UINT32, T.INT64, T.UINT64, T.FLOAT, T.DOUBLE},
    T.INT32: {T.INT64, T.DOUBLE},
    T.UINT32: {T.INT64, T.UINT64, T.DOUBLE},
    T.BOOL: {T.INT8, T.UINT8, T.INT16, T.UINT16, T.INT32, T.UINT32, T.INT64, T.UINT64, T.FLOAT16, T.FLOAT,
             T.DOUBLE},
}


def _round_trip(node: ir.Node) -> ir.Value | None:
    """The original tensor, when this Cast undoes an exact widening Cast of it."""
    inner = node.inputs[0].producer() if node.inputs and node.inputs[0] is not None else None
    if inner is None or not is_op(inner, "Cast") or inner.inputs[0] is None:
        return None
    source, wide, back = inner.inputs[0].dtype, attr(inner, "to"), attr(node, "to")
    if source is None or wide is None or back != int(source):
        return None
    return inner.inputs[0] if T(wide) in EXACT_WIDENING.get(source, set()) else None


def _same_type_cast_like(node: ir.Node) -> bool:
    a, b = node.inputs[0], node.inputs[1] if len(node.inputs) > 1 else None
    return a is not None and b is not None and a.dtype is not None and a.dtype == b.dtype


def _identity_of(node: ir.Node, source: ir.Value) -> None:
    node.op_type = "Identity"
    node.replace_input_with(0, source)
    node.resize_inputs(1)
    for name in list(node.attributes):
        del node.attributes[name]


@register
class RemoveNoOpCasts(AccelcPass):
    """Cast/CastLike to the type the tensor has, and exact widen-then-narrow round trips, removed."""

    name = "remove-noop-casts"

    def call(self, model: ir.Model) -> PassResult:
        before = op_counts(model)
        if not before.get("Cast") and not before.get("CastLike"):
            return PassResult(model, False, stats={"removed": 0})
        if any(is_op(n, "Cast", "CastLike") and any(v is not None and v.dtype is None for v in n.inputs)
               for n in model.graph):
            with contextlib.suppress(Exception):  # element types: what the rules compare; without them none apply
                ShapeInferencePass(strict_mode=False)(model)
        rewriter.rewrite(model, pattern_rewrite_rules=[no_op_cast_rule])
        round_trips = 0
        for node in list(model.graph):
            if is_op(node, "CastLike") and _same_type_cast_like(node):
                _identity_of(node, node.inputs[0])
            elif is_op(node, "Cast") and (source := _round_trip(node)) is not None:
                _identity_of(node, source)
                round_trips += 1
        IdentityEliminationPass()(model)
        RemoveUnusedNodesPass()(model)  # the widening Casts of the round trips, now unread
        after = op_counts(model)
        removed = sum(before.get(op, 0) - after.get(op, 0) for op in ("Cast", "CastLike"))
        modified = sum(before.values()) != sum(after.values())
        return PassResult(model, modified, stats={"removed": removed, "round_trips": round_trips})
