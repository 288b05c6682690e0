"""Fold a Transpose before Flatten -> Dense into the Dense weights: Transpose(0,2,3,1) -> Flatten -> Gemm/MatMul
becomes Flatten -> Gemm/MatMul with the weight rows permuted.

A channels-last model (Keras) flattens its last feature map in NHWC order; after the layout Transposes are sunk
and absorbed, the feature map is NCHW and one Transpose is left right before the Flatten. Flattening the
transposed map reads the same numbers in another order, so the Dense layer can read the untransposed map if its
weight rows are reordered the same way: exact (the same products, summed in another order).
Matched: Transpose (batch axis kept first, static dims, read by the Flatten only) -> Flatten(axis=1) or a Reshape
to (batch, features) -> every reader a Gemm (transA=0) or a MatMul with a constant 2-D weight.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.canonical.sink_transposes import inverse, perm_of
from accelc.transforms.rewrite import add_initializer, attr, const_array, is_op, replace_input


@register
class TransposeIntoDense(AccelcPass):
    name = "transpose-into-dense"

    def call(self, model: ir.Model) -> PassResult:
        folded = []
        for node in list(model.graph):
            if node.graph is model.graph and is_op(node, "Transpose") and _fold(model.graph, node):
                folded.append(node.name)
        return PassResult(model, bool(folded), stats={"folded": folded})


def _fold(graph: ir.Graph, t: ir.Node) -> bool:
    p, x, y = perm_of(t), t.inputs[0], t.outputs[0]
    if p is None or p[0] != 0 or x is None or x.shape is None or y in graph.outputs or len(y.uses()) != 1:
        return False
    dims = list(x.shape)[1:]
    if not all(isinstance(d, int) for d in dims):
        return False
    flat = next(iter(y.uses())).node
    features = math.prod(dims)
    if not _is_flatten(flat, features) or flat.outputs[0] in graph.outputs:
        return False
    readers = list(flat.outputs[0].uses())
    weights = [_dense_weight(u.node, u.idx, features) for u in readers]
    if not readers or any(w is None for w in weights):
        return False
    # index[j] = the position in the transposed flatten of the element at position j of x's own flatten
    rest = [a - 1 for a in p[1:]]
    y_dims = [dims[a] for a in rest]
    index = np.transpose(np.arange(features).reshape(y_dims), inverse(rest)).reshape(-1)
    for use, (w, rows_first) in zip(readers, weights, strict=True):
        new = w[index] if rows_first else w[:, index]
        replace_input(graph, use.node, 1, add_initializer(graph, f"{use.node.name}_weight_nchw", new))
    flat.replace_input_with(0, x)
    graph.remove(t, safe=True)
    return True


def _is_flatten(node: ir.Node, features: int) -> bool:
    if is_op(node, "Flatten"):
        return attr(node, "axis", 1) == 1
    if not is_op(node, "Reshape"):
        return False
    shape = const_array(node.inputs[1]) if len(node.inputs) > 1 else None
    if shape is None or shape.shape != (2,) or attr(node, "allowzero", 0):
        return False
    batch, width = (int(s) for s in shape)
    return width in (-1, features) and batch >= -1 and not batch == width == -1


def _dense_weight(node: ir.Node, index: int, features: int) -> tuple[np.ndarray, bool] | None:
    """The constant weight of a Dense reading the flattened map at input 0, and whether its rows are the features."""
    if index != 0 or len(node.inputs) < 2:
        return None
    w = const_array(node.inputs[1])
    if w is None or w.ndim != 2 or w.dtype != np.float32:
        return None
    if is_op(node, "MatMul") and w.shape[0] == features:
        return w, True
    if is_op(node, "Gemm") and not attr(node, "transA", 0):
        trans_b = bool(attr(node, "transB", 0))
        if w.shape[1 if trans_b else 0] == features:
            return w, not trans_b
    return None
