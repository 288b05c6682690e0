"""GlobalAveragePool/GlobalMaxPool -> AveragePool/MaxPool with one window over the whole (static) map.

hls4ml's global pooling handler reads the channels-last tensor as channels-first (GlobalAveragePool returns
wrong numbers). The window's stride equals its size: hls4ml's io_stream pooling asserts exactly that.
"""

from __future__ import annotations

import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import is_op, set_ints, spatial_shape

LOCAL = {"GlobalAveragePool": "AveragePool", "GlobalMaxPool": "MaxPool"}


@register
class GlobalPool(AccelcPass):
    name = "global-pool"

    def call(self, model: ir.Model) -> PassResult:
        done: dict[str, int] = {}
        warnings = []
        for node in model.graph:
            if not is_op(node, *LOCAL):
                continue
            sizes = spatial_shape(node.inputs[0])
            if sizes is None:
                warnings.append(f"{node.op_type} '{node.name}' kept (needs a static spatial shape)")
                continue
            done[node.op_type] = done.get(node.op_type, 0) + 1
            node.op_type = LOCAL[node.op_type]  # same output tensor, so the node keeps its name
            set_ints(node, "kernel_shape", sizes)
            set_ints(node, "strides", sizes)
            set_ints(node, "pads", [0] * (2 * len(sizes)))
        return PassResult(model, bool(done), stats={"rewritten": done}, warnings=warnings)
