"""AveragePool -> depthwise Conv with constant weights 1/(window size), where that is the same function.

hls4ml cannot lower ONNX AveragePool at all (QONNX's channels-last conversion skips it, and hls4ml then
refuses the node). A Conv with weight 1/prod(k) per channel averages the window; its zero padding counts in the
divisor, so it matches AveragePool without pads, or with pads and count_include_pad=1. The Conv keeps the
pool's name and output. Kept: padded pools that exclude the padding, ceil_mode=1, dilations > 1.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import attr, become_conv, channels, is_op, spatial_shape


def _why_not(node: ir.Node) -> str | None:
    n = len(attr(node, "kernel_shape", []))
    pads = attr(node, "pads", [0] * (2 * n))
    if channels(node.inputs[0]) is None or spatial_shape(node.inputs[0]) is None:
        return "needs a static input shape"
    if attr(node, "auto_pad", "NOTSET") != "NOTSET":
        return "auto_pad is not explicit"
    if attr(node, "ceil_mode", 0):
        return "ceil_mode=1"
    if any(d != 1 for d in attr(node, "dilations", [1] * n)):
        return "dilations > 1"
    if any(pads) and not attr(node, "count_include_pad", 0):
        return f"pads={pads} with count_include_pad=0 (the divisor varies at the border)"
    return None


@register
class AvgPoolToConv(AccelcPass):
    name = "avgpool-to-conv"

    def call(self, model: ir.Model) -> PassResult:
        count, warnings = 0, []
        for node in model.graph:
            if not is_op(node, "AveragePool"):
                continue
            reason = _why_not(node)
            if reason:
                warnings.append(f"AveragePool '{node.name}' kept: {reason}")
                continue
            kernel, c = attr(node, "kernel_shape"), channels(node.inputs[0])
            n = len(kernel)
            w = np.full((c, 1, *kernel), 1.0 / float(np.prod(kernel)), dtype=np.float32)
            strides, pads = attr(node, "strides", [1] * n), attr(node, "pads", [0] * (2 * n))
            become_conv(model.graph, node, w, strides, pads, c)
            count += 1
        return PassResult(model, bool(count), stats={"rewritten": {"AveragePool": count} if count else {}},
                          warnings=warnings)
