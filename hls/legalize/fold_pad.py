"""Fold a zero constant Pad into the Conv(s) that read it (hls4ml's ZeroPadding layer is not reached through
QONNX's channels-last conversion; a Conv's own pads are). Conv pads with zeros, so the sum is exact.
Folds only non-negative padding of the spatial axes; AveragePool became a Conv before this runs.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import attr, const_array, is_op, set_ints


def spatial_pads(pad: ir.Node) -> list[int] | None:
    """The Pad's [begin..., end...] over the spatial axes of an NC... tensor, or None when it is not a zero
    constant pad of those axes only."""
    if attr(pad, "mode", "constant") not in ("constant", b"constant"):
        return None
    x = pad.inputs[0]
    rank = None if x is None or x.shape is None else len(x.shape)
    if len(pad.inputs) > 1:  # opset >= 11: pads, constant_value, axes are inputs
        pads = const_array(pad.inputs[1])
        value = const_array(pad.inputs[2]) if len(pad.inputs) > 2 and pad.inputs[2] is not None else np.zeros(1)
        axes = const_array(pad.inputs[3]) if len(pad.inputs) > 3 and pad.inputs[3] is not None else None
    else:
        pads, value, axes = attr(pad, "pads"), np.asarray(attr(pad, "value", 0.0)), None
    if rank is None or pads is None or value is None or np.any(value != 0):
        return None
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in np.asarray(axes).reshape(-1)]
    full = [0] * (2 * rank)
    for i, a in enumerate(axes):
        full[a], full[rank + a] = pads[i], pads[len(axes) + i]
    if any(p < 0 for p in full) or full[0] or full[1] or full[rank] or full[rank + 1]:
        return None
    return full[2:rank] + full[rank + 2:]


@register
class FoldPad(AccelcPass):
    name = "fold-pad"

    def call(self, model: ir.Model) -> PassResult:
        count, warnings = 0, []
        graph_outputs = set(model.graph.outputs)
        for pad in list(model.graph):
            if not is_op(pad, "Pad"):
                continue
            extra = spatial_pads(pad)
            out = pad.outputs[0]
            users = [(n, i) for n, i in out.uses()]
            foldable = users and out not in graph_outputs and all(
                is_op(n, "Conv") and i == 0 and attr(n, "auto_pad", "NOTSET") == "NOTSET" for n, i in users)
            if extra is None or not foldable:
                warnings.append(f"Pad '{pad.name}' kept (only a zero constant spatial Pad read by Convs is folded)")
                continue
            n = len(extra) // 2
            for conv, _ in users:
                own = attr(conv, "pads", [0] * (2 * n))
                set_ints(conv, "pads", [a + b for a, b in zip(own, extra)])
                conv.replace_input_with(0, pad.inputs[0])
            consts = [v for v in pad.inputs[1:] if v is not None]
            model.graph.remove(pad, safe=True)
            for v in consts:
                if not v.uses() and v.name in model.graph.initializers:
                    del model.graph.initializers[v.name]
            count += 1
        return PassResult(model, bool(count), stats={"rewritten": {"Pad": count} if count else {}}, warnings=warnings)
