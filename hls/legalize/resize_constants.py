"""Resize/Upsample parameters as initializers: Constant nodes lifted, left-out ``roi``/``scales`` made empty.

torch exports ``scales`` as a Constant node and leaves ``roi`` out (an empty input name). The fpga support
check and accelc's hls4ml Resize handler read the parameters as initializers (hls4ml parses only initializers
as constants and has no Constant op), and hls4ml's parser stops at an empty input name before any handler
runs. ONNX's own spelling of "not given" for these inputs (opset 11-12) is an empty tensor, so a left-out
``roi`` (and ``scales`` beside ``sizes``) becomes a 0-element float initializer. Exact: the same tensors,
moved; a Constant node goes when nothing else reads it.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, const_array, is_op


def _lift(graph: ir.Graph, value: ir.Value, array: np.ndarray) -> ir.Value:
    return add_initializer(graph, value.name or "resize_param", array, dtype=None)  # sizes stay int64


@register
class ResizeConstants(AccelcPass):
    name = "resize-constants"

    def call(self, model: ir.Model) -> PassResult:
        graph, count = model.graph, 0
        for node in list(graph):
            if not is_op(node, "Resize", "Upsample"):
                continue
            for i, value in enumerate(node.inputs[1:], start=1):
                if value is None and is_op(node, "Resize") and i < len(node.inputs) - 1:
                    empty = np.zeros((0,), dtype=np.float32)
                    node.replace_input_with(i, _lift(graph, ir.Value(name=f"{node.name}_empty{i}"), empty))
                    count += 1
                    continue
                producer = value.producer() if value is not None else None
                if producer is None or not is_op(producer, "Constant"):
                    continue
                array = const_array(value)
                if array is None:
                    continue
                node.replace_input_with(i, _lift(graph, value, array))
                if not value.uses() and value not in graph.outputs:
                    graph.remove(producer, safe=True)
                count += 1
        return PassResult(model, bool(count), stats={"lifted": count} if count else {})
