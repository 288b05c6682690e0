"""Conv with dilations > 1 -> Conv with a dense kernel that has the zeros written in (hls4ml gets the output
size of dilated convs wrong). A kernel k with dilation d becomes one of size (k-1)*d+1; pads and strides stay."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, attr, const_array, is_op, replace_input, set_ints


def dilate_kernel(w: np.ndarray, dilations: list[int]) -> np.ndarray:
    """(C_out, C_in, k...) -> (C_out, C_in, (k-1)*d+1 ...) with zeros between the taps."""
    shape = [(k - 1) * d + 1 for k, d in zip(w.shape[2:], dilations)]
    dense = np.zeros((*w.shape[:2], *shape), dtype=w.dtype)
    dense[(slice(None), slice(None), *(slice(None, None, d) for d in dilations))] = w
    return dense


@register
class DilatedConv(AccelcPass):
    name = "dilated-conv"

    def call(self, model: ir.Model) -> PassResult:
        count, warnings = 0, []
        for node in model.graph:
            dil = attr(node, "dilations")
            if not is_op(node, "Conv") or not dil or all(d == 1 for d in dil):
                continue
            w = const_array(node.inputs[1])
            if w is None:
                warnings.append(f"Conv '{node.name}': dilations={dil} kept (the weight is not a constant)")
                continue
            dense = dilate_kernel(w, dil)
            replace_input(model.graph, node, 1, add_initializer(model.graph, f"{node.name}_dilated_weight", dense))
            set_ints(node, "dilations", [1] * len(dil))
            set_ints(node, "kernel_shape", dense.shape[2:])
            count += 1
        return PassResult(model, bool(count), stats={"rewritten": {"Conv:dilated": count} if count else {}},
                          warnings=warnings)
