"""Turn a canonical ONNX model into what hls4ml's ONNX frontend expects, keeping track of node names.

hls4ml needs: static shapes (batch 1), explicit Conv/Pool attributes (its parser reads `pads`,
`strides`, `dilations` without defaults), channels-last data-layout ops (QONNX's
ConvertToChannelsLastAndClean), Gemm as MatMul + Add, grouped/depthwise Convs as dense Convs with a
block-diagonal weight (accelc.hls.grouped_conv), C-identifier names, and for an already-quantized model
QONNX Quant nodes in place of QDQ pairs (accelc.hls.quantized_import: hls4ml turns Quant nodes into
fixed-point types). QONNX's `cleanup_model` would rename every node and tensor; we apply its
transformations one by one instead, so each hls4ml layer can be traced back to the ONNX node it came
from (for per-layer verification).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from accelc.hls.grouped_conv import expand_grouped_convs
from accelc.hls.quantized_import import (
    drop_requantization,
    fold_quantized_constants,
    has_quantization,
    qdq_to_quant,
    quantized_constant,
    scaled_products,
    transpose_quantized_weight,
)

_SPATIAL_OPS = ("Conv", "MaxPool", "AveragePool")
_RESERVED = {"input", "output", "inputs", "outputs"}  # hls4ml refuses layers named so


@dataclass
class Prepared:
    model: onnx.ModelProto  # channels-last, hls4ml-ready
    node_names: dict[str, str]  # prepared node name -> canonical ONNX node name it stands for


def _safe(name: str, fallback: str) -> str:
    s = re.sub(r"\W+", "_", name).strip("_") or fallback
    if s in _RESERVED:
        s = f"{s}_0"
    return s if not s[0].isdigit() else f"n{s}"


def _set_batch_one(graph: onnx.GraphProto) -> None:
    for vi in list(graph.input) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = 1
    del graph.value_info[:]  # re-inferred with batch 1


def _fill_default_attributes(graph: onnx.GraphProto) -> None:
    """Make strides/pads/dilations/kernel_shape explicit: hls4ml's parser reads them without defaults."""
    inits = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type not in _SPATIAL_OPS:
            continue
        attrs = {a.name: a for a in node.attribute}
        if "kernel_shape" in attrs:
            k = list(attrs["kernel_shape"].ints)
        elif node.op_type == "Conv" and node.input[1] in inits:
            k = list(inits[node.input[1]].dims[2:])
            node.attribute.append(helper.make_attribute("kernel_shape", k))
        else:
            continue
        n = len(k)
        defaults = {"strides": [1] * n, "pads": [0] * (2 * n)}
        if node.op_type != "AveragePool":
            defaults["dilations"] = [1] * n
        if node.op_type == "Conv":
            defaults["group"] = 1
        for name, value in defaults.items():
            if name not in attrs:
                node.attribute.append(helper.make_attribute(name, value))


def _sanitize_names(graph: onnx.GraphProto) -> dict[str, str]:
    """C-identifier node and tensor names; returns safe node name -> original node name."""
    node_map: dict[str, str] = {}
    used: set[str] = set()
    for i, node in enumerate(graph.node):
        base = _safe(node.name, f"{node.op_type}_{i}")
        name, k = base, 1
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        node_map[name] = node.name
        node.name = name
    tensors: dict[str, str] = {}
    taken: set[str] = set(used)

    def rename(t: str) -> str:
        if not t:
            return t
        if t not in tensors:
            base = _safe(t, "t")
            new, k = base, 1
            while new in taken:
                new, k = f"{base}_{k}", k + 1
            taken.add(new)
            tensors[t] = new
        return tensors[t]

    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        vi.name = rename(vi.name)
    for init in graph.initializer:
        init.name = rename(init.name)
    for node in graph.node:
        node.input[:] = [rename(t) for t in node.input]
        node.output[:] = [rename(t) for t in node.output]
    return node_map


def _gemm_to_matmul_add(graph: onnx.GraphProto) -> None:
    """Gemm -> MatMul (named as the Gemm, so hls4ml's Dense keeps its name) + Add."""
    inits = {i.name: i for i in graph.initializer}
    new_nodes = []
    for node in graph.node:
        quantized = quantized_constant(graph, node.input[1]) if node.op_type == "Gemm" else None
        if node.op_type != "Gemm" or (node.input[1] not in inits and quantized is None):
            new_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        has_bias = len(node.input) > 2 and bool(node.input[2])
        if attrs.get("transA", 0) or (quantized and attrs.get("alpha", 1.0) != 1.0) or (
                has_bias and node.input[2] not in inits and attrs.get("beta", 1.0) != 1.0):
            new_nodes.append(node)  # left to the support check to refuse
            continue
        w_name = f"{node.name}_W"
        if quantized:  # Quant(W): transpose W under the Quant, which keeps the model's integer grid
            if attrs.get("transB", 0):
                transpose_quantized_weight(graph, *quantized, w_name)
            w_name = node.input[1]
        else:
            w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            w = (w.T if attrs.get("transB", 0) else w) * float(attrs.get("alpha", 1.0))
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w), w_name))
        mm_out = f"{node.name}_mm"
        new_nodes.append(helper.make_node("MatMul", [node.input[0], w_name], [mm_out], name=node.name))
        if has_bias:
            if node.input[2] in inits:
                b = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32) * float(attrs.get("beta", 1.0))
                b_name = f"{node.name}_B"
                graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(b.reshape(-1)), b_name))
            else:
                b_name = node.input[2]  # a quantized bias (beta == 1)
            new_nodes.append(helper.make_node("Add", [mm_out, b_name], [node.output[0]], name=f"{node.name}_bias"))
        else:
            new_nodes[-1].output[0] = node.output[0]
    del graph.node[:]
    graph.node.extend(new_nodes)


def _name_new_nodes(graph: onnx.GraphProto, node_map: dict[str, str]) -> None:
    """QONNX inserts Transpose nodes without names; hls4ml needs unique ones."""
    used = {n.name for n in graph.node if n.name}
    for i, node in enumerate(graph.node):
        if not node.name:
            name = f"{node.op_type}_layout_{i}"
            while name in used:
                name += "_"
            used.add(name)
            node.name = name
    for node in graph.node:
        if node.name.endswith("_bias") and node.name[: -len("_bias")] in node_map:
            node_map[node.name] = node_map[node.name[: -len("_bias")]]


def _deterministic_tensor_names(graph: onnx.GraphProto) -> None:
    """QONNX names new tensors randomly; hls4ml chokes on some (leading digits) and random names would
    change the generated project, defeating the emulator cache. Name each after its producer/consumer."""
    keep = {vi.name for vi in list(graph.input) + list(graph.output)}
    rename: dict[str, str] = {}
    for node in graph.node:
        for k, t in enumerate(node.output):
            if t and t not in keep:
                rename[t] = f"{node.name}_out{k}"
    for node in graph.node:
        for k, t in enumerate(node.input):
            if t and t not in keep and t not in rename:
                rename[t] = f"{node.name}_in{k}"  # initializers
    for vi in list(graph.value_info):
        vi.name = rename.get(vi.name, vi.name)
    for init in graph.initializer:
        init.name = rename.get(init.name, init.name)
    for node in graph.node:
        node.input[:] = [rename.get(t, t) for t in node.input]
        node.output[:] = [rename.get(t, t) for t in node.output]


def prepare(model: onnx.ModelProto, native_depthwise: bool = False) -> Prepared:
    """Canonical NCHW ONNX -> hls4ml-ready channels-last ONNX plus the node-name map.

    Grouped Convs become dense Convs of the same name. native_depthwise=True keeps multiplier-1 depthwise
    Convs for hls4ml's DepthwiseConv layer: only for a caller that lowers them with the Latency strategy
    (hls4ml's Resource depthwise aborts in io_parallel and is wrong in io_stream).
    """
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import RemoveStaticGraphInputs, RemoveUnusedTensors
    from qonnx.transformation.infer_shapes import InferShapes

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    _set_batch_one(graph)
    _fill_default_attributes(graph)
    node_map = _sanitize_names(graph)
    if has_quantization(graph):
        model = qdq_to_quant(model)
        graph = model.graph
    _gemm_to_matmul_add(graph)
    fold_quantized_constants(graph)
    drop_requantization(graph)
    expand_grouped_convs(graph, native_depthwise)
    w = ModelWrapper(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in (InferShapes(), FoldConstants(), RemoveUnusedTensors(), RemoveStaticGraphInputs()):
            w = w.transform(t)
        w = w.transform(ConvertToChannelsLastAndClean())
        # Folding again turns the weight Transposes that channels-last inserted into initializers.
        for t in (FoldConstants(), InferShapes(), RemoveUnusedTensors()):
            w = w.transform(t)
    _name_new_nodes(w.model.graph, node_map)
    _deterministic_tensor_names(w.model.graph)
    for name in scaled_products(w.model.graph):
        node_map.pop(name, None)  # its hls4ml output is in integer units: nothing to compare per layer
    return Prepared(w.model, node_map)
