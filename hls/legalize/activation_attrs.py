"""Write ONNX's default activation attributes out, because hls4ml's ONNX parser assumes other defaults.

hls4ml reads the ``alpha`` of Elu, LeakyRelu and ThresholdedRelu with a default of 0.01, while ONNX defaults
Elu's and ThresholdedRelu's to 1.0: a torch ``nn.ELU()`` exported without the attribute came out of the C
simulation 0.98 off (negative inputs scaled by 0.01), a ThresholdedRelu 0.86 off. Setting the attribute
to ONNX's default changes nothing in ONNX and everything in hls4ml. The node keeps its name and output.
"""

from __future__ import annotations

import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import is_op

# ONNX's defaults for the attributes hls4ml reads with a default of its own.
DEFAULTS = {"Elu": ("alpha", 1.0), "ThresholdedRelu": ("alpha", 1.0), "LeakyRelu": ("alpha", 0.01)}


@register
class ActivationAttrs(AccelcPass):
    name = "activation-attrs"

    def call(self, model: ir.Model) -> PassResult:
        done: dict[str, int] = {}
        for node in model.graph:
            if not is_op(node, *DEFAULTS):
                continue
            name, value = DEFAULTS[node.op_type]
            if name not in node.attributes:
                node.attributes[name] = ir.AttrFloat32(name, value)
                done[node.op_type] = done.get(node.op_type, 0) + 1
        return PassResult(model, bool(done), stats={"explicit": done})
