"""Remove inference no-ops: Dropout (inference mode) and Identity."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import IdentityEliminationPass
from onnxscript import rewriter
from onnxscript.rewriter.rules.common import dropout_inference_rule, dropout_zero_rule

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms._util import op_counts


@register
class RemoveNoOps(AccelcPass):
    name = "remove-noops"

    def call(self, model: ir.Model) -> PassResult:
        before = op_counts(model)
        # Dropout becomes Identity (inference semantics), then every Identity is bypassed.
        rewriter.rewrite(model, pattern_rewrite_rules=[dropout_inference_rule, dropout_zero_rule])
        IdentityEliminationPass()(model)
        after = op_counts(model)
        removed = {op: before.get(op, 0) - after.get(op, 0) for op in ("Dropout", "Identity")}
        return PassResult(model, any(removed.values()), stats={"removed": removed})
