"""auto_pad SAME_UPPER/SAME_LOWER/VALID -> explicit pads on Conv/MaxPool/AveragePool (hls4ml ignores auto_pad).

ONNX: SAME gives out = ceil(in / stride) with total padding max((out-1)*stride + (k-1)*dilation + 1 - in, 0),
the odd cell at the end (SAME_UPPER) or at the start (SAME_LOWER); VALID pads nothing. Needs static spatial shapes.
"""

from __future__ import annotations

import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import attr, is_op, kernel_shape, set_ints, spatial_shape


def explicit_pads(mode: str, sizes: list[int], kernel: list[int], strides: list[int],
                  dilations: list[int]) -> list[int]:
    """The ONNX pads [begin..., end...] that an auto_pad mode stands for."""
    n = len(sizes)
    if mode == "VALID":
        return [0] * (2 * n)
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if mode == "SAME_UPPER" else large)
        end.append(large if mode == "SAME_UPPER" else small)
    return begin + end


@register
class ExplicitPads(AccelcPass):
    name = "explicit-pads"

    def call(self, model: ir.Model) -> PassResult:
        done: dict[str, int] = {}
        warnings = []
        for node in model.graph:
            mode = attr(node, "auto_pad", "NOTSET")
            if not is_op(node, "Conv", "MaxPool", "AveragePool") or mode == "NOTSET":
                continue
            sizes, kernel = spatial_shape(node.inputs[0]), kernel_shape(node)
            if sizes is None or kernel is None or mode not in ("SAME_UPPER", "SAME_LOWER", "VALID"):
                warnings.append(f"{node.op_type} '{node.name}': auto_pad={mode} kept (needs static spatial shapes)")
                continue
            n = len(sizes)
            pads = explicit_pads(mode, sizes, kernel, attr(node, "strides", [1] * n), attr(node, "dilations", [1] * n))
            del node.attributes["auto_pad"]
            set_ints(node, "pads", pads)
            done[f"{node.op_type}:{mode}"] = done.get(f"{node.op_type}:{mode}", 0) + 1
        return PassResult(model, bool(done), stats={"rewritten": done}, warnings=warnings)
