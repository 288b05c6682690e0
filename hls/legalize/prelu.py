"""PRelu with a constant slope -> LeakyRelu (one slope) or Relu(x) + (-slope) * Relu(-x) (per-channel).

hls4ml 1.3 maps ONNX PRelu onto a generic activation that drops the slope input and crashes while
converting (IndexError). One slope for every element is LeakyRelu(alpha=slope), which hls4ml lowers.
Otherwise the identity PRelu(x) = Relu(x) + (-s) * Relu(-x) is exact in float (each term is 0 or an
exact product on its half-line) and uses only layers hls4ml lowers right: Mul by a constant (ApplyAlpha,
per-channel constants included), Relu and an Add of two same-shape tensors. The final node (LeakyRelu or
Add) produces PRelu's output tensor and keeps its name.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, const_array, is_op, replace_input


def _decompose(graph: ir.Graph, node: ir.Node, slope: np.ndarray) -> None:
    x, name = node.inputs[0], node.name
    minus_one = add_initializer(graph, f"{name}_minus_one", np.array(-1.0, dtype=np.float32))
    neg_slope = add_initializer(graph, f"{name}_neg_slope", -slope)
    neg = ir.node("Mul", [x, minus_one], name=f"{name}_neg")
    neg_relu = ir.node("Relu", [neg.outputs[0]], name=f"{name}_neg_relu")
    negative = ir.node("Mul", [neg_relu.outputs[0], neg_slope], name=f"{name}_slope")
    positive = ir.node("Relu", [x], name=f"{name}_relu")
    new = [neg, neg_relu, negative, positive]
    for n in new:
        n.outputs[0].name = f"{n.name}_out"
    graph.insert_before(node, new)
    node.op_type = "Add"
    node.replace_input_with(0, positive.outputs[0])
    replace_input(graph, node, 1, negative.outputs[0])


@register
class PReluToRelu(AccelcPass):
    name = "prelu"

    def call(self, model: ir.Model) -> PassResult:
        graph = model.graph
        stats = {"to_leaky_relu": 0, "decomposed": 0}
        warnings = []
        for node in list(graph):
            if not is_op(node, "PRelu"):
                continue
            slope = const_array(node.inputs[1])
            if slope is None or slope.dtype != np.float32:
                warnings.append(f"PRelu '{node.name}' kept: its slope is not a float32 constant")
                continue
            if slope.size and np.all(slope == slope.reshape(-1)[0]):
                old_slope = node.inputs[1]
                node.op_type = "LeakyRelu"
                node.resize_inputs(1)
                node.attributes["alpha"] = ir.AttrFloat32("alpha", float(slope.reshape(-1)[0]))
                if not old_slope.uses() and old_slope.name in graph.initializers:
                    del graph.initializers[old_slope.name]
                stats["to_leaky_relu"] += 1
            else:
                _decompose(graph, node, slope)
                stats["decomposed"] += 1
        return PassResult(model, any(stats.values()), stats=stats, warnings=warnings)
