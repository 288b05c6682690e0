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
            converted = convert_opset(ir.to_proto(model), TARGET_OPSET)
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


def convert_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """ONNX's version converter, keeping the sampling of Upsample and opset-10 Resize: they sample asymmetrically
    (floor for nearest), but the converter leaves the opset-11 Resize at its half_pixel default, which changes
    linear upsampling."""
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
    old = current < 11
    resampled = {n.output[0] for n in model.graph.node if old and n.op_type in ("Upsample", "Resize")}
    converted = onnx.version_converter.convert_version(model, opset)
    for node in converted.graph.node:
        if node.op_type == "Resize" and node.output[0] in resampled:
            names = {a.name for a in node.attribute}
            for name, value in (("coordinate_transformation_mode", "asymmetric"), ("nearest_mode", "floor")):
                if name not in names:
                    node.attribute.append(onnx.helper.make_attribute(name, value))
    return converted


def _replace_contents(model: ir.Model, new: ir.Model) -> None:
    model.graph = new.graph  # the graph carries its opset imports
