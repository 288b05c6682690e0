"""Helpers every rewrite pass shares (canonical, compression, fpga legalization): attributes, static shapes,
constants, new initializers, node surgery, op counts."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

DEFAULT_DOMAINS = ("", "ai.onnx")


def is_op(node: ir.Node, *ops: str) -> bool:
    return node.op_type in ops and node.domain in DEFAULT_DOMAINS


def attr(node: ir.Node, name: str, default=None):
    a = node.attributes.get(name)
    if a is None:
        return default
    value = a.value
    return list(value) if isinstance(value, tuple) else value


def set_ints(node: ir.Node, name: str, values) -> None:
    node.attributes[name] = ir.AttrInt64s(name, [int(v) for v in values])


def spatial_shape(value: ir.Value | None) -> list[int] | None:
    """The static spatial dims (after N, C) of an NC... tensor, or None when any is unknown."""
    if value is None or value.shape is None or len(value.shape) < 3:
        return None
    dims = list(value.shape)[2:]
    return dims if all(isinstance(d, int) for d in dims) else None


def channels(value: ir.Value | None) -> int | None:
    if value is None or value.shape is None or len(value.shape) < 2:
        return None
    c = value.shape[1]
    return c if isinstance(c, int) else None


def const_array(value: ir.Value | None) -> np.ndarray | None:
    """A constant input's numbers (an initializer or a Constant node's output), or None."""
    if value is None:
        return None
    tensor = ir.convenience.get_const_tensor(value)
    return None if tensor is None else np.asarray(tensor.numpy())


def kernel_shape(node: ir.Node) -> list[int] | None:
    k = attr(node, "kernel_shape")
    if k is None and is_op(node, "Conv", "ConvTranspose"):
        w = const_array(node.inputs[1])
        k = list(w.shape[2:]) if w is not None else None
    return k


def add_initializer(graph: ir.Graph, name: str, array: np.ndarray, dtype=np.float32) -> ir.Value:
    """A new initializer with a name not used yet: float32, or the array's own dtype with dtype=None."""
    taken = set(graph.initializers) | {v.name for n in graph for v in n.outputs} | {v.name for v in graph.inputs}
    unique, k = name, 1
    while unique in taken:
        unique, k = f"{name}_{k}", k + 1
    array = np.asarray(array, dtype=dtype, order="C")  # ascontiguousarray would make a 0-d array 1-d
    value = ir.Value(name=unique, const_value=ir.tensor(array, name=unique))
    value.shape = ir.Shape(array.shape)
    value.type = ir.TensorType(ir.DataType.from_numpy(array.dtype))
    graph.register_initializer(value)
    return value


def drop_if_unused(graph: ir.Graph, value: ir.Value | None) -> None:
    """Remove a constant nothing reads any more: an initializer, or a Constant node's output."""
    if value is None or value.uses() or value in graph.inputs or value in graph.outputs:
        return
    if value.name in graph.initializers:
        del graph.initializers[value.name]
    elif value.producer() is not None and is_op(value.producer(), "Constant"):
        graph.remove(value.producer(), safe=True)


def replace_input(graph: ir.Graph, node: ir.Node, index: int, new: ir.Value) -> None:
    """Point a node's input at a new value; drop the old constant when nothing else reads it."""
    old = node.inputs[index]
    node.replace_input_with(index, new)
    drop_if_unused(graph, old)


def become_conv(graph: ir.Graph, node: ir.Node, weight: np.ndarray, strides, pads, group: int,
                dilations=None) -> None:
    """Turn a node into a Conv with this constant weight and these attributes (its other attributes dropped)."""
    for name in list(node.attributes):
        del node.attributes[name]
    node.op_type = "Conv"
    if len(node.inputs) < 2:
        node.resize_inputs(2)  # a pool: the weight becomes input 1
    replace_input(graph, node, 1, add_initializer(graph, f"{node.name}_conv_weight", weight))
    set_ints(node, "kernel_shape", weight.shape[2:])
    set_ints(node, "strides", strides)
    if dilations is not None:
        set_ints(node, "dilations", dilations)
    set_ints(node, "pads", pads)
    node.attributes["group"] = ir.AttrInt64("group", group)


def count_nodes(model: ir.Model) -> int:
    return sum(1 for _ in model.graph)


def op_counts(model: ir.Model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
