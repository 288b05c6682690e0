"""Constant folding and dead-node removal, via onnxscript's optimizer."""

from __future__ import annotations

import onnx_ir as ir
import onnxscript.optimizer

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import count_nodes


@register
class FoldConstants(AccelcPass):
    name = "fold-constants"

    def call(self, model: ir.Model) -> PassResult:
        before = count_nodes(model)
        # Not optimizer.optimize(): its default rewrites turn Flatten into Reshape, which loses the
        # "flatten" meaning that channels-last lowering relies on.
        onnxscript.optimizer.fold_constants(model)
        onnxscript.optimizer.remove_unused_nodes(model)
        after = count_nodes(model)
        return PassResult(model, after != before, stats={"nodes_before": before, "nodes_after": after})
