"""Remove inference no-ops: Dropout (inference mode) and Identity."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx_ir.passes.common import IdentityEliminationPass

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import op_counts


def _inference_dropout(node: ir.Node) -> bool:
    """A Dropout that is the identity: not in training mode and its mask output unused."""
    if node.op_type != "Dropout" or node.domain not in ("", "ai.onnx"):
        return False
    if len(node.outputs) > 1 and node.outputs[1].uses():
        return False
    # opset >= 12: training_mode is input 2 (absent = False); older opsets have no training input.
    training = node.inputs[2] if len(node.inputs) > 2 else None
    if training is None:
        return True
    const = training.const_value
    return const is not None and not bool(np.asarray(const.numpy()).reshape(-1)[0])


@register
class RemoveNoOps(AccelcPass):
    name = "remove-noops"

    def call(self, model: ir.Model) -> PassResult:
        before = op_counts(model)
        # onnxscript's dropout rules match the pre-opset-12 attribute form only, so Dropout is
        # turned into Identity here, then every Identity is bypassed by onnx-ir's pass.
        for node in list(model.graph):
            if _inference_dropout(node):
                node.op_type = "Identity"
                node.resize_inputs(1)
                node.resize_outputs(1)
                for name in list(node.attributes):
                    del node.attributes[name]
        IdentityEliminationPass()(model)
        after = op_counts(model)
        removed = {op: before.get(op, 0) - after.get(op, 0) for op in ("Dropout", "Identity")}
        kept = after.get("Dropout", 0)
        warnings = [f"{kept} Dropout node(s) in training mode or with a used mask were kept"] if kept else []
        return PassResult(model, any(removed.values()), stats={"removed": removed}, warnings=warnings)
