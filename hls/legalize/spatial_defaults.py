"""Conv/MaxPool/AveragePool attributes made explicit: kernel_shape, strides, pads, dilations, group.

hls4ml's ONNX parser reads `strides`, `pads`, `kernel_shape` and a Conv's `group` without ONNX's defaults (a
left-out one is None to it, and the conversion crashes), so each default is written down: strides 1, pads 0,
dilations 1 (not on AveragePool, which has none before opset 19), group 1 and, for a Conv, the kernel shape
of its constant weight. auto_pad=VALID becomes pads 0 (the same thing). The same function, so the node keeps
its name. Left without a `pads` default: an auto_pad SAME the explicit-pads pass could not resolve (the support
check refuses it); left alone: a Conv without kernel_shape whose weight is not a constant.
"""

from __future__ import annotations

import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import attr, is_op, kernel_shape, set_ints

SPATIAL_OPS = ("Conv", "MaxPool", "AveragePool")


@register
class SpatialDefaults(AccelcPass):
    name = "spatial-defaults"

    def call(self, model: ir.Model) -> PassResult:
        done: dict[str, int] = {}
        warnings = []
        for node in model.graph:
            if not is_op(node, *SPATIAL_OPS):
                continue
            kernel = kernel_shape(node)
            if kernel is None:
                warnings.append(f"{node.op_type} '{node.name}' kept: no kernel_shape and no constant weight")
                continue
            n = len(kernel)
            defaults: dict = {"kernel_shape": kernel, "strides": [1] * n, "pads": [0] * (2 * n)}
            if node.op_type != "AveragePool":
                defaults["dilations"] = [1] * n
            mode = attr(node, "auto_pad", "NOTSET")
            if mode == "VALID":
                del node.attributes["auto_pad"]
            elif mode != "NOTSET":
                del defaults["pads"]
                warnings.append(f"{node.op_type} '{node.name}': auto_pad={mode} kept, no pads written")
            added = [name for name in defaults if name not in node.attributes]
            for name in added:
                set_ints(node, name, defaults[name])
            if node.op_type == "Conv" and "group" not in node.attributes:
                node.attributes["group"] = ir.AttrInt64("group", 1)
                added.append("group")
            if added or mode == "VALID":
                done[node.op_type] = done.get(node.op_type, 0) + 1
        return PassResult(model, bool(done), stats={"explicit": done}, warnings=warnings)
