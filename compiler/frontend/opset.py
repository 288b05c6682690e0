"""Opset conversion of the standard part of a graph: custom-domain nodes (QONNX's Quant, BipolarQuant, Trunc from
Brevitas, FINN or QKeras tools) pass through untouched.

ONNX's version converter runs shape inference over every node and fails on a node whose domain the file does not
import ("No opset import for domain finn.custom_op.general"), which is how those tools often write them. Here the
custom nodes are cut out first: their outputs become inputs of the standard graph and their inputs its outputs, so
the converter sees standard ops only; the converted standard nodes and the untouched custom nodes are then put
back together in dependency order. A file at opset 9-11 thus loads at opset >= 13 and never has to be re-exported.
"""

from __future__ import annotations

import onnx
from onnx import helper

STANDARD_DOMAINS = ("", "ai.onnx")


def is_custom(node: onnx.NodeProto) -> bool:
    return node.domain not in STANDARD_DOMAINS


def convert_standard_part(proto: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """The model with its default-domain opset converted to `opset` (accelc's convert_opset, which keeps
    Upsample's sampling); custom-domain nodes, their attributes and the custom opset imports are kept as they
    are. Without custom nodes this is convert_opset itself."""
    from accelc.transforms.canonical.normalize_opset import convert_opset

    custom = [n for n in proto.graph.node if is_custom(n)]
    if not custom:
        return convert_opset(proto, opset)
    standard = onnx.ModelProto()
    standard.CopyFrom(proto)
    graph = standard.graph
    del graph.node[:]
    graph.node.extend(n for n in proto.graph.node if not is_custom(n))
    del standard.opset_import[:]
    standard.opset_import.extend(o for o in proto.opset_import if o.domain in STANDARD_DOMAINS)
    known = {v.name: v for v in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info)}
    inits = {t.name for t in proto.graph.initializer}
    inputs = {v.name for v in proto.graph.input}
    outputs = {v.name for v in proto.graph.output}
    cut_in = [t for n in custom for t in n.output if t and t not in inputs]  # custom outputs feed the standard part
    cut_out = [t for n in custom for t in n.input if t and t not in outputs and t not in inits and t not in inputs
               and t not in cut_in]  # what custom nodes read from the standard part
    graph.input.extend(_value(t, known) for t in dict.fromkeys(cut_in))
    graph.output.extend(_value(t, known) for t in dict.fromkeys(cut_out))
    converted = convert_opset(standard, opset)
    merged = onnx.ModelProto()
    merged.CopyFrom(converted)
    cut = set(cut_in) | set(cut_out)
    del merged.graph.input[:]
    merged.graph.input.extend(v for v in converted.graph.input if v.name not in set(cut_in) or v.name in inputs)
    del merged.graph.output[:]
    merged.graph.output.extend(v for v in converted.graph.output if v.name not in cut or v.name in outputs)
    del merged.graph.node[:]
    merged.graph.node.extend(_in_dependency_order([*converted.graph.node, *custom], proto.graph))
    merged.opset_import.extend(o for o in proto.opset_import if o.domain not in STANDARD_DOMAINS)
    return merged


def _value(name: str, known: dict[str, onnx.ValueInfoProto]) -> onnx.ValueInfoProto:
    """The tensor's declared type where the file has one; otherwise float (what QONNX's quantizers produce) of
    unknown shape."""
    if name in known:
        value = onnx.ValueInfoProto()
        value.CopyFrom(known[name])
        return value
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)


def _in_dependency_order(nodes: list[onnx.NodeProto], original: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Each node after the nodes producing its inputs, otherwise keeping the given order (standard nodes as the
    converter wrote them, then custom nodes)."""
    produced = {t for n in nodes for t in n.output if t}
    available = {v.name for v in original.input} | {t.name for t in original.initializer}
    pending, ordered = list(nodes), []
    while pending:
        ready = next((i for i, node in enumerate(pending)
                      if all(not t or t in available or t not in produced for t in node.input)), None)
        if ready is None:  # a cycle cannot come from a valid graph; keep the rest as it is
            ordered.extend(pending)
            break
        node = pending.pop(ready)
        ordered.append(node)
        available.update(node.output)
    return ordered
