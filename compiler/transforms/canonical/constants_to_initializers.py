"""Constant and ConstantOfShape nodes (with a constant shape) become initializers.

Exporters write small constants as nodes: the TorchScript exporter the bounds of ReLU6/Hardtanh/clamp (Clip min/max),
the divisor of `x / 255` and Reshape targets; ONNX's version converter the Unsqueeze/Squeeze axes it moves from
attributes to inputs (opsets 6-12 -> 13); onnxscript's constant folder the Shape/Gather values it folds. Targets read
constants as initializers (an fpga Clip bound, a Div's divisor, a Reshape target), so here every one becomes one.
Constant nodes: onnx-ir's LiftConstantsToInitializersPass (every attribute form, any size); ConstantOfShape, which it
does not cover, is filled here with numpy. The initializer keeps the node output's name. A constant that is itself a
graph output stays a node (an initializer cannot be one in every runtime).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx_ir.passes.common import LiftConstantsToInitializersPass

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import attr, const_array, is_op

_HIDDEN = "accelc.hidden"  # a domain the library pass skips


def _nodes(model: ir.Model, op: str) -> list[ir.Node]:
    return [n for n in ir.traversal.RecursiveGraphIterator(model.graph) if is_op(n, op)]


def _fill(node: ir.Node) -> np.ndarray | None:
    """The tensor a ConstantOfShape makes, when its shape input is a constant."""
    shape = const_array(node.inputs[0]) if node.inputs else None
    if shape is None or shape.ndim != 1 or (shape < 0).any():
        return None
    value = attr(node, "value")
    fill = np.asarray(value.numpy()).reshape(-1) if value is not None else np.zeros(1, np.float32)
    return np.full([int(d) for d in shape], fill[0], dtype=fill.dtype)


def _lift_constant_of_shape(node: ir.Node) -> bool:
    out = node.outputs[0]
    array = _fill(node)
    if array is None or out.is_graph_output() or node.graph is None:
        return False
    graph, name = node.graph, out.name
    out.name = None  # free the name for the initializer
    tensor = ir.tensor(array, name=name)
    value = ir.Value(name=name, shape=ir.Shape(array.shape), type=ir.TensorType(tensor.dtype), const_value=tensor)
    graph.register_initializer(value)
    out.replace_all_uses_with(value)
    shape_input = node.inputs[0]
    graph.remove(node, safe=True)
    if shape_input is not None and shape_input.is_initializer() and not shape_input.uses() and not (
            shape_input.is_graph_input() or shape_input.is_graph_output()):
        graph.initializers.pop(shape_input.name)
    return True


@register
class ConstantsToInitializers(AccelcPass):
    """Every Constant node, and every ConstantOfShape of a constant shape, becomes an initializer."""

    name = "constants-to-initializers"

    def call(self, model: ir.Model) -> PassResult:
        before = len(_nodes(model, "Constant"))
        warnings = []
        sparse = [n for n in _nodes(model, "Constant") if "sparse_value" in n.attributes]
        for node in sparse:  # the library pass raises on a sparse value: hidden from it, kept as nodes
            node.domain = _HIDDEN
        try:
            LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model)
        finally:
            for node in sparse:
                node.domain = ""
        if sparse:
            names = [n.name for n in sparse][:5]
            warnings.append(f"{len(sparse)} Constant node(s) with a sparse value were kept: {names}")
        lifted = before - len(_nodes(model, "Constant"))
        filled = sum(_lift_constant_of_shape(n) for n in _nodes(model, "ConstantOfShape"))
        kept = len(_nodes(model, "ConstantOfShape"))
        if kept:
            warnings.append(f"{kept} ConstantOfShape node(s) with a computed shape were kept")
        stats = {"constants": lifted, "constant_of_shape": filled}
        return PassResult(model, bool(lifted or filled), stats=stats, warnings=warnings)
