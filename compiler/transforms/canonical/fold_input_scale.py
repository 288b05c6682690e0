"""Input normalization (`x / 255`, `x * s`, `(x - mean) / std`) folded into the Conv/Gemm/MatMul it feeds.

A chain of Mul/Div/Add/Sub nodes, each with one scalar or per-channel constant, computes `a * x + b` per channel
(a, b vectors over what the next layer's weights tell apart: a Conv's input channels, a Gemm/MatMul's input
features). When the chain's only reader is a layer with constant weights, the layer can read `x` instead:

* Gemm / MatMul: `(a*x + b) @ W = x @ (diag(a) W) + b @ W` -- the scale goes into the weights, the shift into the
  bias (Gemm's C; for a MatMul the constant of the Add after it, or a new Add). Across a Flatten(axis=1) before
  the Gemm (`x / 255` then `x.flatten(1)`), the constants may vary along every axis the Flatten merges;
* Conv: each input channel's weights are scaled by a; the shift adds `sum W * b` per output channel to the bias.
  With zero padding the shift is NOT exact (the padded zeros would be normalized too: a border pixel would see
  `-mean/std` where the model sees 0), so a chain with a shift stays as it is before a padded Conv (targets lower
  the per-channel Sub/Div themselves). A pure scale is exact either way (0 * a = 0).

The folded constants are computed in float64 and rounded once; the result is the same function up to float
rounding. A chain stops at a node whose output is read twice (or is a graph output), at a constant that varies
along another axis or broadcasts the tensor, at a division of a constant by the tensor, and at a division by zero.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import add_initializer, attr, const_array, drop_if_unused, is_op, replace_input

AFFINE = ("Mul", "Div", "Add", "Sub")
LAYERS = ("Conv", "Gemm", "MatMul")


def _layout(node: ir.Node) -> tuple[int, dict[int, int]] | None:
    """(rank, {axis: size}) of the tensor the layer reads: the axes its weights tell apart (a Conv's channels,
    a Gemm/MatMul's features), for a layer with a float32 constant weight."""
    x, w = node.inputs[0], const_array(node.inputs[1]) if len(node.inputs) > 1 else None
    if w is None or w.dtype != np.float32 or x is None or x.shape is None:
        return None
    rank = len(x.shape)
    if is_op(node, "Conv"):
        return (rank, {1: w.shape[1] * attr(node, "group", 1)}) if w.ndim == rank >= 3 else None
    if is_op(node, "Gemm"):
        ok = rank == 2 and w.ndim == 2 and not attr(node, "transA", 0)
        return (2, {1: w.shape[1] if attr(node, "transB", 0) else w.shape[0]}) if ok else None
    return (rank, {rank - 1: w.shape[0]}) if w.ndim == 2 and rank >= 2 else None


def _vector(c: np.ndarray, rank: int, free: dict[int, int]) -> np.ndarray | None:
    """A constant that varies along the free axes only (a scalar, per channel, per feature), as the float64 vector
    over the layer's input features; None when it varies along another axis or would broadcast the tensor."""
    if c.ndim > rank:
        return None
    padded = c.reshape((1,) * (rank - c.ndim) + c.shape)
    if any(d != 1 and free.get(i) != d for i, d in enumerate(padded.shape)):
        return None
    return np.broadcast_to(padded.astype(np.float64), [free.get(i, 1) for i in range(rank)]).reshape(-1)


def _through_flatten(p: ir.Node, layout) -> tuple[int, dict[int, int]] | None:
    """A Flatten(axis=1) before a Gemm/MatMul: constants before it may vary along every (static) axis it merges."""
    rank, free = layout
    x = p.inputs[0]
    if not is_op(p, "Flatten") or attr(p, "axis", 1) != 1 or rank != 2 or x.shape is None:
        return None
    dims = list(x.shape)[1:]
    if not all(isinstance(d, int) for d in dims) or int(np.prod(dims)) != free[1]:
        return None
    return len(dims) + 1, {i + 1: d for i, d in enumerate(dims)}


def _chain(graph: ir.Graph, layer: ir.Node, layout) -> tuple[list[tuple[ir.Node, int]], np.ndarray, np.ndarray]:
    """Walk up from the layer's input: the affine nodes (nearest first, with their constant's index) and a, b."""
    y, chain = layer.inputs[0], []
    a = np.ones(next(iter(layout[1].values())))  # one number per input feature of the layer
    b = np.zeros_like(a)
    while True:
        p = y.producer()
        if p is None or len(y.uses()) != 1 or y in graph.outputs:
            break
        flat = _through_flatten(p, layout)
        if flat is not None:
            layout, y = flat, p.inputs[0]
            continue
        if not is_op(p, *AFFINE) or len(p.inputs) != 2:
            break
        consts = [i for i in (0, 1) if const_array(p.inputs[i]) is not None]
        if len(consts) != 1:
            break
        k = consts[0]
        c, v = const_array(p.inputs[k]), p.inputs[1 - k]
        rank, free = layout
        if c.dtype != np.float32 or v.shape is None or len(v.shape) != rank or any(
                v.shape[i] != d for i, d in free.items()):
            break
        vec = _vector(c, rank, free)
        step = None if vec is None else _step(p, k, vec)
        if step is None:
            break
        a, b = a * step[0], a * step[1] + b
        chain.append((p, k))
        y = v
    return chain, a, b


def _step(node: ir.Node, k: int, c: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """out = a * v + b for the node's non-constant operand v (the constant is operand k)."""
    zero, one = np.zeros_like(c), np.ones_like(c)
    if node.op_type == "Mul":
        return c, zero
    if node.op_type == "Add":
        return one, c
    if node.op_type == "Sub":
        return (one, -c) if k == 1 else (-one, c)
    return (1.0 / c, zero) if k == 1 and np.all(c != 0) else None  # Div: only by a nonzero constant


def _padded(node: ir.Node) -> bool:
    auto_pad = attr(node, "auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    return auto_pad not in ("NOTSET", "VALID") or any(attr(node, "pads", []) or [])


def _set(graph: ir.Graph, node: ir.Node, index: int, array: np.ndarray, suffix: str) -> None:
    if len(node.inputs) <= index:
        node.resize_inputs(index + 1)
    replace_input(graph, node, index, add_initializer(graph, f"{node.name}_{suffix}", array.astype(np.float32)))


def _fold_conv(graph: ir.Graph, node: ir.Node, a: np.ndarray, b: np.ndarray) -> bool:
    w = const_array(node.inputs[1]).astype(np.float64)
    bias = const_array(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else np.zeros(w.shape[0])
    group = attr(node, "group", 1)
    if bias is None or w.shape[0] % group:
        return False
    per_out = np.arange(w.shape[0]) // (w.shape[0] // group)  # the group each output channel reads
    expand = (slice(None), slice(None)) + (None,) * (w.ndim - 2)
    scale, shift = a.reshape(group, -1)[per_out][expand], b.reshape(group, -1)[per_out][expand]
    _set(graph, node, 1, w * scale, "weight")
    if np.any(b):
        _set(graph, node, 2, bias + (w * shift).sum(axis=tuple(range(1, w.ndim))), "bias")
    return True


def _fold_gemm(graph: ir.Graph, node: ir.Node, a: np.ndarray, b: np.ndarray) -> bool:
    trans = bool(attr(node, "transB", 0))
    w = const_array(node.inputs[1]).astype(np.float64)
    w_km = w.T if trans else w  # (K, M)
    c = const_array(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else np.zeros(())
    if c is None:
        return False
    folded = a[:, None] * w_km
    _set(graph, node, 1, folded.T if trans else folded, "weight")
    if np.any(b):
        alpha, beta = attr(node, "alpha", 1.0), attr(node, "beta", 1.0)
        _set(graph, node, 2, beta * c.astype(np.float64) + alpha * (b @ w_km), "bias")
        node.attributes["beta"] = ir.AttrFloat32("beta", 1.0)
    return True


def _fold_matmul(graph: ir.Graph, node: ir.Node, a: np.ndarray, b: np.ndarray) -> bool:
    w = const_array(node.inputs[1]).astype(np.float64)
    y = node.outputs[0]
    _set(graph, node, 1, a[:, None] * w, "weight")
    if not np.any(b):
        return True
    shift = b @ w
    users = y.uses()
    add = users[0].node if len(users) == 1 and y not in graph.outputs else None
    if add is not None and is_op(add, "Add") and len(add.inputs) == 2:
        k = 1 - users[0].idx
        c = const_array(add.inputs[k])
        if c is not None and c.dtype == np.float32:  # the Linear's own bias Add takes the shift
            _set(graph, add, k, c.astype(np.float64) + shift, "bias")
            return True
    matmul = ir.node("MatMul", list(node.inputs), name=f"{node.name}_matmul")
    matmul.outputs[0].name = f"{matmul.name}_out"
    graph.insert_before(node, matmul)
    node.op_type = "Add"  # produces the MatMul's output tensor, plus the shift
    node.replace_input_with(0, matmul.outputs[0])
    replace_input(graph, node, 1, add_initializer(graph, f"{node.name}_shift", shift))
    return True


FOLD = {"Conv": _fold_conv, "Gemm": _fold_gemm, "MatMul": _fold_matmul}


def _remove(graph: ir.Graph, chain: list[tuple[ir.Node, int]]) -> None:
    """Bypass and drop each affine node (its output has one reader) and the constant only it read."""
    for node, k in chain:
        const = node.inputs[k]
        node.outputs[0].replace_all_uses_with(node.inputs[1 - k])
        graph.remove(node, safe=True)
        drop_if_unused(graph, const)


@register
class FoldInputScale(AccelcPass):
    name = "fold-input-scale"

    def call(self, model: ir.Model) -> PassResult:
        graph = model.graph
        candidates = [n for n in graph if is_op(n, *LAYERS) and n.inputs[0] is not None
                      and n.inputs[0].producer() is not None and is_op(n.inputs[0].producer(), *AFFINE, "Flatten")]
        if any(n.inputs[0].shape is None for n in candidates):
            ShapeInferencePass()(model)  # shapes of hand-built graphs; exporters write them
        folded: dict[str, int] = {}
        removed, warnings = 0, []
        for layer in candidates:
            layout = _layout(layer)
            chain, a, b = _chain(graph, layer, layout) if layout is not None else ([], None, None)
            if not chain:
                continue
            ops = "/".join(n.op_type for n, _ in reversed(chain))
            if is_op(layer, "Conv") and np.any(b) and _padded(layer):
                warnings.append(f"{ops} before Conv '{layer.name}' kept: it shifts the input and the Conv pads with "
                                "zeros (folding would normalize the padding too)")
                continue
            op = layer.op_type  # a bare MatMul becomes the Add of its shift
            if not FOLD[op](graph, layer, a, b):
                warnings.append(f"{ops} before {op} '{layer.name}' kept: its bias is not a constant")
                continue
            _remove(graph, chain)
            folded[op] = folded.get(op, 0) + 1
            removed += len(chain)
        return PassResult(model, bool(folded), stats={"folded": folded, "nodes_removed": removed}, warnings=warnings)
