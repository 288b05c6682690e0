"""Bring the default-domain opset to the one the targets are tested with (13), when ONNX can convert."""

from __future__ import annotations

import onnx
import onnx.version_converter
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register

TARGET_OPSET = 13


@register
class NormalizeOpset(AccelcPass):
    name = "normalize-opset"

    def call(self, model: ir.Model) -> PassResult:
        current = model.opset_imports.get("", TARGET_OPSET)
        if current == TARGET_OPSET:
            return PassResult(model, False, stats={"opset": current})
        try:
            converted = onnx.version_converter.convert_version(ir.to_proto(model), TARGET_OPSET)
            onnx.checker.check_model(converted)
        except Exception as e:  # the converter lacks adapters for some ops; keep the model as it is
            note = f"kept opset {current}: conversion to {TARGET_OPSET} failed ({type(e).__name__})"
            if current < TARGET_OPSET:
                raise ValueError(f"opset {current} is below {TARGET_OPSET} and could not be converted") from e
            return PassResult(model, False, stats={"opset": current}, warnings=[note])
        new = ir.from_proto(converted)
        # In place: move the converted graph into the model object the pipeline holds.
        _replace_contents(model, new)
        return PassResult(model, True, stats={"opset": TARGET_OPSET, "from_opset": current})


def _replace_contents(model: ir.Model, new: ir.Model) -> None:
    model.graph = new.graph  # the graph carries its opset imports
