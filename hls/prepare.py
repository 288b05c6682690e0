"""Turn the legalized ONNX model into what hls4ml's ONNX frontend expects, keeping track of node names.

The input is the graph after the legalize-fpga passes (accelc.hls.legalize), which already did the exact graph
rewrites hls4ml needs (explicit Conv/Pool attributes, Gemm as MatMul + Add, grouped Convs as dense ones, ...).
This is the format adapter for hls4ml's parser: static shapes (batch 1), C-identifier names, channels-last
data-layout ops (QONNX's ConvertToChannelsLastAndClean), deterministic tensor names, and for an
already-quantized model QONNX Quant nodes in place of QDQ pairs (accelc.hls.quantized_import: hls4ml turns
Quant nodes into fixed-point types) with the fix-ups that only make sense after that conversion — among them
Gemm with a quantized weight, whose transpose belongs under the Quant node. QONNX's `cleanup_model` would
rename every node and tensor; we apply its transformations one by one instead, so each hls4ml layer can be
traced back to the ONNX node it came from (for per-layer verification).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from accelc.frontend.qonnx_functions import functions_to_qonnx
from accelc.hls.quantized_import import (
    QONNX_DOMAIN,
    bipolar_weights_to_quant,
    drop_requantization,
    fold_quantized_constants,
    has_quantization,
    qdq_to_quant,
    quantized_constant,
    round_quantized_constants,
    scaled_products,
    transpose_quantized_weight,
    trunc_to_quant,
)

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


def _quantized_gemm_to_matmul_add(graph: onnx.GraphProto) -> dict[str, str]:
    """Gemm with a Quant weight -> MatMul (named as the Gemm, so hls4ml's Dense keeps its name) + Add
    `<gemm>_bias`; returns each new Add's name -> its Gemm's.

    Float Gemms are the legalize-fpga pass gemm-to-matmul's. This one stays here: its transB transpose belongs
    under the Quant node (one place after QDQ -> Quant, not every QDQ chain form before), and its MatMul is a
    scaled product (scaled_products) that the per-layer trace skips, so it keeps the Gemm's name for the
    hls4ml config (accelc.hls.project) to find it by."""
    inits = {i.name: i for i in graph.initializer}
    new_nodes, bias_adds = [], {}
    for node in graph.node:
        quantized = quantized_constant(graph, node.input[1]) if node.op_type == "Gemm" else None
        if quantized is None:
            new_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        has_bias = len(node.input) > 2 and bool(node.input[2])
        if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or (
                has_bias and node.input[2] not in inits and attrs.get("beta", 1.0) != 1.0):
            new_nodes.append(node)  # left to the support check to refuse
            continue
        if attrs.get("transB", 0):  # Quant(W): transpose W under the Quant, which keeps the model's integer grid
            transpose_quantized_weight(graph, *quantized, f"{node.name}_W")
        mm_out = f"{node.name}_mm"
        new_nodes.append(helper.make_node("MatMul", [node.input[0], node.input[1]], [mm_out], name=node.name))
        if has_bias:
            if node.input[2] in inits:
                b = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32) * float(attrs.get("beta", 1.0))
                b_name = f"{node.name}_B"
                graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(b.reshape(-1)), b_name))
            else:
                b_name = node.input[2]  # a quantized bias (beta == 1)
            new_nodes.append(helper.make_node("Add", [mm_out, b_name], [node.output[0]], name=f"{node.name}_bias"))
            bias_adds[f"{node.name}_bias"] = node.name
        else:
            new_nodes[-1].output[0] = node.output[0]
    del graph.node[:]
    graph.node.extend(new_nodes)
    return bias_adds


def _name_new_nodes(graph: onnx.GraphProto, node_map: dict[str, str], bias_adds: dict[str, str]) -> None:
    """QONNX inserts Transpose nodes without names; hls4ml needs unique ones. A Gemm's bias Add stands for it."""
    used = {n.name for n in graph.node if n.name}
    for i, node in enumerate(graph.node):
        if not node.name:
            name = f"{node.op_type}_layout_{i}"
            while name in used:
                name += "_"
            used.add(name)
            node.name = name
    for add, gemm in bias_adds.items():
        node_map[add] = node_map[gemm]


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


def prepare(model: onnx.ModelProto) -> Prepared:
    """Legalized NCHW ONNX (after legalize-fpga) -> hls4ml-ready channels-last ONNX plus the node-name map."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import RemoveStaticGraphInputs, RemoveUnusedTensors
    from qonnx.transformation.infer_shapes import InferShapes

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    _set_batch_one(graph)
    node_map = _sanitize_names(graph)
    functions_to_qonnx(model, QONNX_DOMAIN)  # QONNX quantizers QDQ cannot express, kept as function calls
    bipolar_weights_to_quant(graph)
    trunc_to_quant(graph)
    round_quantized_constants(graph)
    if has_quantization(graph):
        model = qdq_to_quant(model)
        graph = model.graph
    bias_adds = _quantized_gemm_to_matmul_add(graph)
    fold_quantized_constants(graph)
    drop_requantization(graph)
    w = ModelWrapper(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in (InferShapes(), FoldConstants(), RemoveUnusedTensors(), RemoveStaticGraphInputs()):
            w = w.transform(t)
        w = w.transform(ConvertToChannelsLastAndClean())
        # Folding again turns the weight Transposes that channels-last inserted into initializers.
        for t in (FoldConstants(), InferShapes(), RemoveUnusedTensors()):
            w = w.transform(t)
    _name_new_nodes(w.model.graph, node_map, bias_adds)
    _deterministic_tensor_names(w.model.graph)
    for name in scaled_products(w.model.graph):
        node_map.pop(name, None)  # its hls4ml output is in integer units: nothing to compare per layer
    return Prepared(w.model, node_map)
