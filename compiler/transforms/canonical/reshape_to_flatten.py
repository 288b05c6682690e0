"""Reshapes and Flattens that flatten each sample become `Flatten(axis=1)`; ones that change nothing go.

`x.view(-1, k)` (the seed LeNet's `x.view(-1, 4*4*50)`), `x.view(x.size(0), -1)`, `x.reshape(x.shape[0], -1)` and
Reshape to `[0, -1]` all compute `Flatten(axis=1)` when the per-sample shape is static: the target's first entry is
the batch (0, the batch dim itself once fold-shape-arithmetic made it 0, or -1 when the rest is exactly the per-sample
element count) and the rest is the product of the per-sample dims. Checked against the input's actual shape, so
`x.view(-1, k)` with k not the per-sample size (which mixes samples) is left alone. A Reshape whose result is its
input's shape goes, and so does a `Flatten(axis=1)` of a rank-2 tensor (both appear in ONNX's conversion of an
opset<13 LogSoftmax). Any other such Reshape gets the batch-free target `[0, d1, ...]`.
Batch-1 exports write `Flatten(axis=0)`; on an input whose batch dim is a static 1 that is `Flatten(axis=1)` (with a
free batch it mixes samples and is kept).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import onnx_ir as ir
from onnx_ir.passes.common import IdentityEliminationPass, ShapeInferencePass

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, attr, const_array, drop_if_unused, is_op, replace_input


def _static_rest(value: ir.Value | None) -> tuple[object, list[int]] | None:
    """(batch dim, per-sample dims) of a tensor whose dims after the first are static."""
    if value is None or value.shape is None or len(value.shape) < 1:
        return None
    dims = list(value.shape)
    return (dims[0], dims[1:]) if all(isinstance(d, int) for d in dims[1:]) else None


def reshape_result(node: ir.Node) -> list[int] | None:
    """The per-sample dims the Reshape makes, when its first output dim is the input's batch for every batch size."""
    found = _static_rest(node.inputs[0])
    target = const_array(node.inputs[1]) if len(node.inputs) > 1 else None
    if found is None or target is None or target.ndim != 1 or len(target) < 1:
        return None
    batch, rest = found
    allowzero = attr(node, "allowzero", 0)
    t = [int(v) for v in target]
    per_sample = math.prod(rest)
    if allowzero and 0 in t:
        return None
    # Entries after the first: 0 copies the input's dim, -1 is inferred (at most one).
    out = [rest[i - 1] if v == 0 and 0 < i <= len(rest) else v for i, v in enumerate(t)][1:]
    if any(v < -1 or v == 0 for v in out) or out.count(-1) + (t[0] == -1) > 1:
        return None
    known = math.prod(v for v in out if v > 0)
    if t[0] == 0 or (isinstance(batch, int) and t[0] == batch):
        pass  # the batch, copied (or the static batch of a fixed-batch graph)
    elif t[0] == -1:
        if known != per_sample:
            return None  # -1 would not be the batch: the Reshape mixes samples
    else:
        return None
    if -1 in out:
        if known == 0 or per_sample % known:
            return None
        out[out.index(-1)] = per_sample // known
    return out if math.prod(out) == per_sample else None


def _to_flatten(graph: ir.Graph, node: ir.Node) -> None:
    old = node.inputs[1]
    node.op_type = "Flatten"
    node.resize_inputs(1)
    drop_if_unused(graph, old)
    for name in list(node.attributes):
        del node.attributes[name]
    node.attributes["axis"] = ir.AttrInt64("axis", 1)


def _to_identity(node: ir.Node) -> None:
    node.op_type = "Identity"
    node.resize_inputs(1)
    for name in list(node.attributes):
        del node.attributes[name]


@register
class ReshapeToFlatten(AccelcPass):
    """Per-sample flattening Reshapes -> Flatten(axis=1); no-op Reshapes/Flattens removed; Flatten(axis=0) of a
    batch-1 tensor -> Flatten(axis=1)."""

    name = "reshape-to-flatten"

    def call(self, model: ir.Model) -> PassResult:
        graph = model.graph
        if not any(is_op(n, "Reshape", "Flatten") for n in graph):
            return PassResult(model, False, stats={"flatten": 0, "removed": 0, "batch_free": 0})
        if any(is_op(n, "Reshape", "Flatten") and (n.inputs[0].shape is None) for n in graph):
            with contextlib.suppress(Exception):  # without shapes nothing below applies
                ShapeInferencePass(strict_mode=False)(model)
        flatten = removed = batch_free = 0
        for node in list(graph):
            found = _static_rest(node.inputs[0]) if node.inputs else None
            if found is None:
                continue
            batch, rest = found
            if is_op(node, "Reshape"):
                out = reshape_result(node)
                if out is None:
                    continue
                if out == rest:
                    _to_identity(node)
                    removed += 1
                elif len(rest) > 1 and out == [math.prod(rest)]:
                    _to_flatten(graph, node)
                    flatten += 1
                elif [int(v) for v in const_array(node.inputs[1])] != [0, *out]:
                    target = add_initializer(graph, f"{node.name or 'reshape'}_shape", np.array([0, *out]), None)
                    replace_input(graph, node, 1, target)
                    if "allowzero" in node.attributes:
                        del node.attributes["allowzero"]
                    batch_free += 1
            elif is_op(node, "Flatten"):
                axis = attr(node, "axis", 1)
                if len(rest) == 1 and axis in (1, -1):
                    _to_identity(node)
                    removed += 1
                elif axis == 0 and batch == 1 and rest:
                    node.attributes["axis"] = ir.AttrInt64("axis", 1)
                    flatten += 1
        if removed:
            IdentityEliminationPass()(model)
        stats = {"flatten": flatten, "removed": removed, "batch_free": batch_free}
        return PassResult(model, bool(flatten or removed or batch_free), stats=stats)
