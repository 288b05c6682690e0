"""Clip in the forms the fpga lowering takes: Clip(x, 0) -> Relu; an absent min -> -FLT_MAX.

Clip(x, min=0) with no max is Relu exactly (hls4ml's own ReLU layer). Other Clips go to accelc's hls4ml
Clip extension (accelc.hls.extensions.clip), which reads constant bounds. hls4ml cannot parse a node with
an empty input name (the way ONNX leaves out an optional min while giving max): that min becomes
-FLT_MAX, a no-op bound for every finite input, which the extension then treats as absent. The node keeps
its name and output tensor.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, const_array, is_op


def _given(node: ir.Node, i: int) -> bool:
    return len(node.inputs) > i and node.inputs[i] is not None


@register
class ClipBounds(AccelcPass):
    name = "clip-bounds"

    def call(self, model: ir.Model) -> PassResult:
        graph = model.graph
        stats = {"to_relu": 0, "min_filled": 0}
        for node in list(graph):
            if not is_op(node, "Clip") or node.inputs[0] is None:
                continue
            lo = const_array(node.inputs[1]) if _given(node, 1) else None
            if lo is not None and lo.dtype == np.float32 and float(lo) == 0.0 and not _given(node, 2):
                old = node.inputs[1]
                node.op_type = "Relu"
                node.resize_inputs(1)
                if not old.uses() and old.name in graph.initializers and old not in graph.inputs:
                    del graph.initializers[old.name]
                stats["to_relu"] += 1
            elif not _given(node, 1) and _given(node, 2) and node.inputs[0].dtype == ir.DataType.FLOAT:
                floor = add_initializer(graph, f"{node.name}_min", np.array(np.finfo(np.float32).min))
                node.replace_input_with(1, floor)
                stats["min_filled"] += 1
        return PassResult(model, any(stats.values()), stats=stats)
