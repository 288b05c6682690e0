"""BatchNorm written as `Unsqueeze -> BatchNormalization -> Squeeze` becomes one BatchNormalization of the tensor.

Older exporters (and ONNX runtimes that wanted rank >= 3 for BatchNormalization) write BatchNorm1d on an (N, C)
tensor as Unsqueeze to (N, C, 1[, 1]), BatchNormalization, Squeeze back. BatchNormalization normalizes axis 1 with
per-channel statistics whatever the trailing dims are, so on the original tensor it computes the same numbers; the
pair of reshapes goes and fold-batchnorm can then fold the BatchNormalization into the Gemm before it. Matched only
where the Unsqueeze appends trailing axes (never the batch or channel axis), the Squeeze removes exactly those, and
neither intermediate tensor has another reader.
"""

from __future__ import annotations

import contextlib

import onnx_ir as ir
from onnx_ir.passes.common import IdentityEliminationPass, RemoveUnusedNodesPass, ShapeInferencePass

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import attr, const_array, is_op


def _axes(node: ir.Node) -> list[int] | None:
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        a = const_array(node.inputs[1])
        return None if a is None else [int(v) for v in a.reshape(-1)]
    a = attr(node, "axes")
    return None if a is None else [int(v) for v in a]


def _only_reader(value: ir.Value) -> ir.Node | None:
    users = {id(n): n for n, _ in value.uses()}
    if len(users) != 1 or value.is_graph_output():
        return None
    return next(iter(users.values()))


def _match(bn: ir.Node) -> tuple[ir.Node, ir.Node] | None:
    """(Unsqueeze, Squeeze) around this BatchNormalization, when removing both is exact."""
    if len(bn.outputs) > 1 and any(v.uses() for v in bn.outputs[1:]):
        return None  # training-mode outputs are read
    unsq = bn.inputs[0].producer() if bn.inputs[0] is not None else None
    if unsq is None or not is_op(unsq, "Unsqueeze") or _only_reader(unsq.outputs[0]) is not bn:
        return None
    sq = _only_reader(bn.outputs[0])
    if sq is None or not is_op(sq, "Squeeze"):
        return None
    x = unsq.inputs[0]
    rank = len(x.shape) if x is not None and x.shape is not None else None
    up, down = _axes(unsq), _axes(sq)
    if rank is None or rank < 2 or up is None or down is None:
        return None
    out_rank = rank + len(up)
    added = sorted(a + out_rank if a < 0 else a for a in up)
    removed = sorted(a + out_rank if a < 0 else a for a in down)
    return (unsq, sq) if added == removed == list(range(rank, out_rank)) else None


@register
class UnsqueezedBatchNorm(AccelcPass):
    """Unsqueeze -> BatchNormalization -> Squeeze (trailing unit axes) -> BatchNormalization."""

    name = "unsqueezed-batchnorm"

    def call(self, model: ir.Model) -> PassResult:
        rewritten = 0
        bns = [n for n in model.graph if is_op(n, "BatchNormalization")]
        if any(n.inputs[0] is not None and n.inputs[0].shape is None for n in bns):
            with contextlib.suppress(Exception):  # the Unsqueeze's input rank: without it nothing is matched
                ShapeInferencePass(strict_mode=False)(model)
        for bn in bns:
            if (found := _match(bn)) is None:
                continue
            unsq, sq = found
            x = unsq.inputs[0]
            bn.replace_input_with(0, x)
            bn.outputs[0].shape = ir.Shape(list(x.shape))
            sq.op_type = "Identity"  # the Squeeze's output keeps its name (it may be a graph output)
            sq.resize_inputs(1)
            for name in list(sq.attributes):
                del sq.attributes[name]
            rewritten += 1
        if rewritten:
            IdentityEliminationPass()(model)
            RemoveUnusedNodesPass()(model)
        return PassResult(model, bool(rewritten), stats={"rewritten": rewritten})
