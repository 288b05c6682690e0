"""What the fpga target lowers correctly, per op and per attribute value, checked before lowering.

hls4ml's ONNX frontend accepts some nodes and then mistranslates them (dilated convs get the wrong
output size, `auto_pad` is ignored for Conv, padded pooling pads with zeros, Softmax on a non-last
axis, broadcasting MatMul, GlobalAveragePool). Anything not known to be right is refused here with
the op, node, attribute and a hint; the compile-time self-check is the second line of defence.
Grouped and depthwise Convs are accepted: accelc.hls.prepare rewrites them exactly into dense Convs.
Already-quantized models (QDQ pairs, QONNX Quant nodes) are accepted where hls4ml keeps their integer
grids (accelc.hls.quantized_import); a quantized constant counts as a constant weight or bias.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx_ir as ir

from accelc.backends.base import Unsupported
from accelc.hls.quantized_import import constant_source, is_quantization_node, quant_problems

TARGET = "fpga"
# A check's finding: the problem, or (problem, hint).
Problem = str | tuple[str, str]
ACTIVATIONS = {"Relu", "Sigmoid", "Tanh", "LeakyRelu", "ThresholdedRelu", "Elu", "Softsign", "Softplus"}


def _attr(node: ir.Node, name: str, default=None):
    a = node.attributes.get(name)
    return default if a is None else a.value


def _rank(value: ir.Value | None) -> int | None:
    return None if value is None or value.shape is None else len(value.shape)


def _is_const(value: ir.Value | None) -> bool:
    """A constant, or a quantized one (DequantizeLinear/Quant of a constant: accelc.hls.quantized_import)."""
    return constant_source(value) is not None


def _const_value(value: ir.Value | None):
    src = constant_source(value)
    return None if src is None else src.const_value


def _spatial(node: ir.Node, kind: str) -> list[str]:
    problems = []
    rank = _rank(node.inputs[0])
    if rank not in (3, 4):
        problems.append(f"{kind} on a rank-{rank} input (only 1D and 2D are lowered)")
    auto_pad = _attr(node, "auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        problems.append(f"auto_pad={auto_pad} (hls4ml ignores it); export with explicit pads")
    dil = list(_attr(node, "dilations", []) or [])
    if any(d != 1 for d in dil):
        problems.append(f"dilations={dil} (hls4ml computes a wrong output size for dilation > 1)")
    return problems


def _group(node: ir.Node, group: int) -> list[Problem]:
    """Grouped/depthwise Convs are lowered exactly as dense Convs with a block-diagonal weight
    (accelc.hls.grouped_conv); that needs the weight's shape to agree with the group count."""
    hint = "a grouped Conv needs group >= 1 dividing C_in and C_out, and weights of shape (C_out, C_in/group, k...)"
    w = _const_value(node.inputs[1])
    if group < 1:
        return [(f"group={group}", hint)]
    if w is None:
        return []  # refused as non-constant weights below
    shape = tuple(w.shape)
    if len(shape) < 3 or shape[0] % group:
        return [(f"group={group} does not divide the {shape[0]} output channels (weight shape {list(shape)})", hint)]
    x = node.inputs[0]
    c_in = x.shape[1] if x is not None and x.shape is not None and len(x.shape) > 1 else None
    if isinstance(c_in, int) and c_in != shape[1] * group:
        return [(f"group={group} with weights for {shape[1] * group} input channels, but the input has {c_in}", hint)]
    return []


def _conv(node: ir.Node) -> list[Problem]:
    problems: list[Problem] = list(_spatial(node, "Conv"))
    group = _attr(node, "group", 1)
    if group != 1:
        problems += _group(node, group) + _grouped_quantized(node)
    if not _is_const(node.inputs[1]):
        problems.append("weights are not a constant initializer")
    return problems


def _pool(node: ir.Node) -> list[str]:
    problems = _spatial(node, node.op_type)
    if _attr(node, "ceil_mode", 0):
        problems.append("ceil_mode=1 (hls4ml floors the output size)")
    pads = list(_attr(node, "pads", []) or [])
    if any(pads):
        problems.append(f"pads={pads} (hls4ml pads pooling windows with zeros, ONNX does not)")
    if len(node.outputs) > 1 and node.outputs[1].uses():
        problems.append("MaxPool indices output is used")
    return problems


def _gemm(node: ir.Node) -> list[str]:
    problems = []
    if _attr(node, "transA", 0):
        problems.append("transA=1")
    if not _is_const(node.inputs[1]):
        problems.append("B is not a constant initializer")
    elif node.inputs[1].const_value is None and _attr(node, "alpha", 1.0) != 1.0:
        problems.append(f"alpha={_attr(node, 'alpha')} on quantized weights (only alpha=1 keeps their integer grid)")
    if len(node.inputs) > 2 and node.inputs[2] is not None and not _is_const(node.inputs[2]):
        problems.append("C is not a constant initializer")
    elif len(node.inputs) > 2 and node.inputs[2] is not None and node.inputs[2].const_value is None and _attr(
            node, "beta", 1.0) != 1.0:
        problems.append(f"beta={_attr(node, 'beta')} on a quantized bias (only beta=1 is lowered)")
    return problems


def _matmul(node: ir.Node) -> list[str]:
    problems = []
    if not _is_const(node.inputs[1]):
        problems.append("the second input is not a constant weight matrix")
    if _rank(node.inputs[0]) != 2:
        problems.append(f"rank-{_rank(node.inputs[0])} input (broadcasting MatMul is mistranslated)")
    return problems


def _last_axis(node: ir.Node) -> list[str]:
    rank = _rank(node.inputs[0])
    axis = _attr(node, "axis", -1)
    if rank is None or axis not in (-1, rank - 1):
        return [f"axis={axis} on a rank-{rank} input (only the last axis is lowered)"]
    if rank > 2:
        return [f"rank-{rank} input (channels-last reorders the axes)"]
    return []


def _flatten(node: ir.Node) -> list[str]:
    return [] if _attr(node, "axis", 1) == 1 else [f"axis={_attr(node, 'axis')} (only axis=1)"]


def _reshape(node: ir.Node) -> list[str]:
    out_rank = _rank(node.outputs[0])
    if not _is_const(node.inputs[1]):
        return ["the target shape is not constant"]
    if (_rank(node.inputs[0]) or 0) > 2 and out_rank != 2:
        return ["reshape of a rank>2 tensor other than a flatten (channels-last changes the element order)"]
    return []


def _binary(node: ir.Node) -> list[str]:
    a, b = node.inputs[0], node.inputs[1]
    if node.op_type == "Add" and _is_const(b) and a.producer() is not None and a.producer().op_type == "MatMul":
        return []  # MatMul + bias: hls4ml merges them into one Dense layer
    if _is_const(a) or _is_const(b):
        return ["a constant operand (only two computed tensors of the same shape are lowered)"]
    if a.shape is None or b.shape is None or list(a.shape) != list(b.shape):
        return [f"operands of shapes {a.shape} and {b.shape} (broadcasting is not lowered)"]
    return []


def _grouped_quantized(node: ir.Node) -> list[Problem]:
    """accelc.hls.grouped_conv expands grouped Convs with a constant weight only, not a quantized one."""
    if _attr(node, "group", 1) != 1 and node.inputs[1] is not None and node.inputs[1].const_value is None and _is_const(
            node.inputs[1]):
        return [("a grouped Conv with quantized weights (the block-diagonal expansion needs a float constant)",
                 "keep grouped/depthwise Convs float (onnxruntime quantize_static(nodes_to_exclude=[...]))")]
    return []


def _concat(node: ir.Node) -> list[str]:
    rank = _rank(node.outputs[0])
    axis = _attr(node, "axis", 1)
    if rank != 2 or axis not in (1, -1):
        return [f"axis={axis} on rank-{rank} tensors (only rank-2 feature concatenation is lowered)"]
    return []


def _batchnorm(node: ir.Node) -> list[str]:
    return [] if all(_is_const(v) for v in node.inputs[1:5]) else ["statistics are not constants"]


def _ok(node: ir.Node) -> list[str]:
    return []


CHECKS: dict[str, Callable[[ir.Node], list[Problem]]] = {
    "Conv": _conv,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Softmax": _last_axis,
    "LogSoftmax": _last_axis,  # accelc's hls4ml extension layer
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Add": _binary,
    "Sub": _binary,
    "Mul": _binary,
    "Concat": _concat,
    "BatchNormalization": _batchnorm,
    # Already-quantized models: QDQ chains and QONNX Quant nodes (accelc.hls.quantized_import).
    "QuantizeLinear": quant_problems,
    "DequantizeLinear": quant_problems,
    **{op: _ok for op in ACTIVATIONS},
}

HINTS = {
    "GlobalAveragePool": "hls4ml returns wrong numbers for it; replace it by AveragePool over the full map + Flatten",
    "Transpose": "layout changes are not lowered; keep the model in its export layout",
    "Pad": "fold the padding into the Conv's pads attribute (export with padding= on the conv)",
    "Clip": "use ReLU (or wait for the Clip lowering)",
    "HardSigmoid": "hls4ml's HardSigmoid is broken (hls4ml issue 409)",
}


def fpga_supports(model: ir.Model) -> list[Unsupported]:
    """Every node the fpga target would refuse or mistranslate; an empty list means all are lowered."""
    found = []
    for node in model.graph:
        quantization = is_quantization_node(node)  # incl. QONNX Quant, the Clip of QuantizeLinear -> Clip -> DQ
        check = quant_problems if quantization else CHECKS.get(node.op_type)
        if node.domain not in ("", "ai.onnx") and not quantization:
            found.append(Unsupported(node.op_type, node.name, TARGET, f"custom domain '{node.domain}'"))
        elif check is None:
            found.append(Unsupported(node.op_type, node.name, TARGET, "operator not lowered to hls4ml",
                                     HINTS.get(node.op_type, "see the README's table of supported ops")))
        else:
            for problem in check(node):
                reason, hint = problem if isinstance(problem, tuple) else (problem, "")
                found.append(Unsupported(node.op_type, node.name, TARGET, reason, hint))
    return found
