"""MaxPool/AveragePool ceil_mode=1 -> ceil_mode=0 (hls4ml always floors the output size).

Where ceil and floor give the same output size the flag is dropped. Where ceil adds windows, they overhang the
end of the input; ONNX fills that overhang as it does padding for MaxPool (never the max) and for AveragePool
with count_include_pad=0 (not counted), so the overhang becomes end padding, exactly. Other cases are kept.
"""

from __future__ import annotations

import math

import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import attr, is_op, set_ints, spatial_shape


def pool_out(size: int, k: int, s: int, d: int, pb: int, pe: int, ceil: bool) -> int:
    """ONNX's pooled size; with ceil the last window must start inside the input or its begin padding."""
    span = size + pb + pe - ((k - 1) * d + 1)
    out = (math.ceil(span / s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + pb:
        out -= 1
    return out


@register
class PoolCeil(AccelcPass):
    name = "pool-ceil"

    def call(self, model: ir.Model) -> PassResult:
        done: dict[str, int] = {}
        warnings = []
        for node in model.graph:
            if not is_op(node, "MaxPool", "AveragePool") or not attr(node, "ceil_mode", 0):
                continue
            sizes, kernel = spatial_shape(node.inputs[0]), attr(node, "kernel_shape")
            if sizes is None or kernel is None or attr(node, "auto_pad", "NOTSET") != "NOTSET":
                warnings.append(f"{node.op_type} '{node.name}': ceil_mode=1 kept (needs static shapes, explicit pads)")
                continue
            n = len(sizes)
            strides, dil = attr(node, "strides", [1] * n), attr(node, "dilations", [1] * n)
            pads = attr(node, "pads", [0] * (2 * n))
            extra, outs = [], []
            for i in range(n):
                args = (sizes[i], kernel[i], strides[i], dil[i], pads[i], pads[n + i])
                want = pool_out(*args, ceil=True)
                outs.append(want)
                # The end padding that just fits the last window: less than the kernel, as ONNX requires.
                span = (want - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1
                extra.append(max(0, span - (sizes[i] + pads[i] + pads[n + i])))
            kind = "same-size" if not any(extra) else "end-padding"
            if any(extra) and node.op_type == "AveragePool" and attr(node, "count_include_pad", 0):
                warnings.append(f"AveragePool '{node.name}': ceil_mode=1 with count_include_pad=1 kept")
                continue
            if any(extra):
                set_ints(node, "pads", pads[:n] + [p + e for p, e in zip(pads[n:], extra)])
            node.attributes["ceil_mode"] = ir.AttrInt64("ceil_mode", 0)
            # onnx's shape inference skips the "last window starts inside" rule that ONNX Runtime applies.
            out = node.outputs[0]
            if out.shape is not None:
                out.shape = ir.Shape([*list(out.shape)[:2], *outs])
            done[f"{node.op_type}:{kind}"] = done.get(f"{node.op_type}:{kind}", 0) + 1
        return PassResult(model, bool(done), stats={"rewritten": done}, warnings=warnings)
