"""Shape inference: every intermediate value gets a static shape (targets and MAC counts need them)."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass

from accelc.passes import AccelcPass, PassResult, register


@register
class InferShapes(AccelcPass):
    name = "infer-shapes"

    def call(self, model: ir.Model) -> PassResult:
        result = ShapeInferencePass()(model)
        unknown = [
            v.name
            for node in model.graph
            for v in node.outputs
            if v.shape is None or not all(isinstance(d, int) for d in v.shape[1:])
        ]
        warnings = [f"shapes not fully inferred for {len(unknown)} value(s): {unknown[:5]}"] if unknown else []
        return PassResult(model, result.modified, stats={"unknown_shapes": len(unknown)}, warnings=warnings)
