"""ConvTranspose -> Conv with the flipped, transposed kernel (hls4ml has no ONNX ConvTranspose). With stride 1,
ConvTranspose(x, W, pads p) is Conv(x, W') with W'[o, i] = flip(W[i, o]) per group, dilations kept and pads
(k-1)*d - p (+ output_padding at the end). Stride s > 1 is the same Conv on x with s-1 zeros inserted between
pixels; hls4ml has no zero insertion, so it is built from ops it lowers exactly: nearest Resize by s (each pixel
repeated s times: asymmetric + floor) times a constant 0/1 mask that keeps the first copy. That leaves s-1 extra
zeros at the end of each axis, taken off the Conv's end pads. Kept (the support check refuses them): output_shape,
auto_pad, a non-constant weight, padding larger than the kernel (a crop), a strided one whose end pads cannot
absorb the extra zeros, or one without static spatial input dims.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import (
    add_initializer,
    attr,
    become_conv,
    channels,
    const_array,
    is_op,
    spatial_shape,
)


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
    if any(s != 1 for s in attr(node, "strides", [1] * n)) and spatial_shape(node.inputs[0]) is None:
        return f"strides={attr(node, 'strides')} on an input without static spatial dims (zero insertion needs them)"
    if attr(node, "output_shape") is not None or attr(node, "auto_pad", "NOTSET") != "NOTSET":
        return "output_shape/auto_pad (export with explicit pads)"
    return None


def _zero_insert(graph: ir.Graph, node: ir.Node, strides: list[int]) -> None:
    """x -> Resize(nearest, x strides) * mask: the pixels at multiples of the stride, zeros between (and after)."""
    x, name = node.inputs[0], node.name
    dims, c = spatial_shape(x), channels(x)
    up_dims = [d * s for d, s in zip(dims, strides)]
    mask = np.zeros([1, c, *up_dims], dtype=np.float32)
    mask[(slice(None), slice(None), *(slice(None, None, s) for s in strides))] = 1.0
    roi = add_initializer(graph, f"{name}_zero_insert_roi", np.zeros((0,), dtype=np.float32))
    scales = add_initializer(graph, f"{name}_zero_insert_scales", np.array([1, 1, *strides], dtype=np.float32))
    up = ir.node("Resize", [x, roi, scales], {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                                              "nearest_mode": "floor"}, name=f"{name}_zero_insert_up")
    masked = ir.node("Mul", [up.outputs[0], add_initializer(graph, f"{name}_zero_insert_mask", mask)],
                     name=f"{name}_zero_insert_mask")
    shape = ir.Shape([x.shape[0], c, *up_dims])
    for n in (up, masked):
        n.outputs[0].name = f"{n.name}_out"
        n.outputs[0].shape, n.outputs[0].type = shape, x.type
    graph.insert_before(node, [up, masked])
    node.replace_input_with(0, masked.outputs[0])


@register
class ConvTransposeToConv(AccelcPass):
    name = "conv-transpose"

    def call(self, model: ir.Model) -> PassResult:
        count, warnings = 0, []
        for node in list(model.graph):
            if not is_op(node, "ConvTranspose"):
                continue
            w = const_array(node.inputs[1])
            reason = _why_not(node, w)
            n = 0 if w is None else w.ndim - 2
            if reason is None:
                kernel, dil = list(w.shape[2:]), attr(node, "dilations", [1] * n)
                pads, extra = attr(node, "pads", [0] * (2 * n)), attr(node, "output_padding", [0] * n)
                strides = attr(node, "strides", [1] * n)
                span = [(k - 1) * d for k, d in zip(kernel, dil)]
                new_pads = [s - p for s, p in zip(span, pads[:n])]
                # Zero insertion by Resize leaves stride-1 extra zeros at each axis' end: fewer end pads.
                new_pads += [s - p + e - (st - 1) for s, p, e, st in zip(span, pads[n:], extra, strides)]
                reason = f"pads={pads} crop more than the kernel spans" if min(new_pads) < 0 else None
                if reason and any(st != 1 for st in strides):
                    reason = (f"strides={strides} with pads={pads}, output_padding={extra}: the end pads cannot absorb "
                              "the zeros that zero insertion leaves after the last pixel")
            if reason:
                warnings.append(f"ConvTranspose '{node.name}' kept: {reason}")
                continue
            group = attr(node, "group", 1)
            if any(st != 1 for st in strides):
                _zero_insert(model.graph, node, strides)
            # Same output tensor: the node keeps its name.
            become_conv(model.graph, node, conv_weight(w, group), [1] * n, new_pads, group, dilations=dil)
            count += 1
        return PassResult(model, bool(count), stats={"rewritten": {"ConvTranspose": count} if count else {}},
                          warnings=warnings)
