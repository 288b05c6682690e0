"""ConvTranspose with unit strides -> Conv with the flipped, transposed kernel (hls4ml has no ONNX
ConvTranspose). With stride 1, ConvTranspose(x, W, pads p) is Conv(x, W') with W'[o, i] = flip(W[i, o]) per
group, dilations kept and pads (k-1)*d - p (+ output_padding at the end). Kept (the support check refuses
them): strides > 1 (they need zero insertion, a layer hls4ml lacks), output_shape, auto_pad, a non-constant
weight, and padding larger than the kernel (a crop).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms._spatial import add_initializer, attr, const_array, is_op, replace_input, set_ints


def conv_weight(w: np.ndarray, group: int) -> np.ndarray:
    """ConvTranspose weight (C_in, C_out/g, k...) -> Conv weight (C_out, C_in/g, k...) with flipped taps."""
    c_in, c_out_g = w.shape[:2]
    k = w.shape[2:]
    g = w.reshape(group, c_in // group, c_out_g, *k).swapaxes(1, 2)  # (g, C_out/g, C_in/g, k...)
    flipped = np.flip(g, axis=tuple(range(3, 3 + len(k))))
    return np.ascontiguousarray(flipped.reshape(group * c_out_g, c_in // group, *k))


def _why_not(node: ir.Node, w: np.ndarray | None) -> str | None:
    if w is None:
        return "the weight is not a constant"
    n = w.ndim - 2
    if any(s != 1 for s in attr(node, "strides", [1] * n)):
        return f"strides={attr(node, 'strides')} (stride > 1 needs zero insertion)"
    if attr(node, "output_shape") is not None or attr(node, "auto_pad", "NOTSET") != "NOTSET":
        return "output_shape/auto_pad (export with explicit pads)"
    return None


@register
class ConvTransposeToConv(AccelcPass):
    name = "conv-transpose"

    def call(self, model: ir.Model) -> PassResult:
        count, warnings = 0, []
        for node in model.graph:
            if not is_op(node, "ConvTranspose"):
                continue
            w = const_array(node.inputs[1])
            reason = _why_not(node, w)
            n = 0 if w is None else w.ndim - 2
            if reason is None:
                kernel, dil = list(w.shape[2:]), attr(node, "dilations", [1] * n)
                pads, extra = attr(node, "pads", [0] * (2 * n)), attr(node, "output_padding", [0] * n)
                span = [(k - 1) * d for k, d in zip(kernel, dil)]
                new_pads = [s - p for s, p in zip(span, pads[:n])]
                new_pads += [s - p + e for s, p, e in zip(span, pads[n:], extra)]
                reason = f"pads={pads} crop more than the kernel spans" if min(new_pads) < 0 else None
            if reason:
                warnings.append(f"ConvTranspose '{node.name}' kept: {reason}")
                continue
            group = attr(node, "group", 1)
            replace_input(model.graph, node, 1, add_initializer(model.graph, f"{node.name}_conv_weight",
                                                                conv_weight(w, group)))
            for name in list(node.attributes):
                del node.attributes[name]
            node.op_type = "Conv"  # same output tensor: the node keeps its name
            set_ints(node, "kernel_shape", kernel)
            set_ints(node, "strides", [1] * n)
            set_ints(node, "dilations", dil)
            set_ints(node, "pads", new_pads)
            node.attributes["group"] = ir.AttrInt64("group", group)
            count += 1
        return PassResult(model, bool(count), stats={"rewritten": {"ConvTranspose": count} if count else {}},
                          warnings=warnings)
