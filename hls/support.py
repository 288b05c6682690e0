"""What the fpga target lowers correctly, per op and per attribute value, checked before lowering.

hls4ml's ONNX frontend accepts some nodes and then mistranslates them (dilated convs get the wrong
output size, `auto_pad` is ignored for Conv, padded pooling pads with zeros, Softmax on a non-last
axis, broadcasting MatMul, GlobalAveragePool). Anything not known to be right is refused here with
the op, node, attribute and a hint; the compile-time self-check is the second line of defence.
Grouped and depthwise Convs are accepted: legalize-fpga's expand-grouped-conv rewrites them exactly into dense Convs.
Already-quantized models (QDQ pairs, QONNX Quant nodes) are accepted where hls4ml keeps their integer
grids (accelc.hls.quantized_import); a quantized constant counts as a constant weight or bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import onnx_ir as ir

from accelc.errors import Unsupported
from accelc.hls.edges import edge_problems
from accelc.hls.quantized_import import constant_source, is_quantization_node, quant_problems
from accelc.transforms.canonical.reduce_to_pool import reduce_axes

TARGET = "fpga"
# A check's finding: the problem, or (problem, hint).
Problem = str | tuple[str, str]
# Checked in C simulation against ONNX Runtime (16-bit fixed point, inputs ~N(0, 2)): Relu/LeakyRelu/
# ThresholdedRelu/HardSigmoid within 2 LSB; the lookup-table ones within 0.015 (Sigmoid 0.005, Tanh 0.008,
# Elu/Selu 0.009, Softsign 0.011, Softplus 0.014). HardSigmoid and Clip are accelc's hls4ml extensions.
ACTIVATIONS = {"Relu", "Sigmoid", "Tanh", "LeakyRelu", "ThresholdedRelu", "Elu", "Selu", "Softsign", "Softplus",
               "HardSigmoid"}
# ONNX's Selu constants; hls4ml's selu hard-codes them and ignores the node's attributes.
SELU = {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}


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


def _spatial(node: ir.Node, kind: str) -> list[Problem]:
    """What legalize-fpga (accelc.hls.legalize) could not make explicit: it rewrites auto_pad, dilated Convs,
    ceil_mode and AveragePool where exact, so what is left here is what it declined."""
    problems: list[Problem] = []
    rank = _rank(node.inputs[0])
    if rank not in (3, 4):
        problems.append(f"{kind} on a rank-{rank} input (only 1D and 2D are lowered)")
    auto_pad = _attr(node, "auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        problems.append((f"auto_pad={auto_pad} (hls4ml ignores it)",
                         "give the input static spatial dims, so it becomes explicit pads, or export with pads"))
    dil = list(_attr(node, "dilations", []) or [])
    if any(d != 1 for d in dil):
        problems.append((f"dilations={dil} (hls4ml computes a wrong output size for dilation > 1)",
                         "a dilated Conv with constant weights is lowered; a dilated pool is not"))
    return problems


def _group(node: ir.Node, group: int) -> list[Problem]:
    """Grouped/depthwise Convs are lowered exactly as dense Convs with a block-diagonal weight
    (accelc.hls.legalize.expand_grouped_conv); that needs the weight's shape to agree with the group count."""
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


def _is_stream(model: ir.Model, io_type: str | None) -> bool:
    """The io type accelc.hls.project will use: the user's, else io_stream for a model with any Conv."""
    return io_type == "stream" if io_type else any(n.op_type == "Conv" for n in model.graph)


def _stream_pool(node: ir.Node) -> list[Problem]:
    """hls4ml's io_stream pooling asserts (and aborts the process) on pads or strides != kernel_shape;
    io_parallel pools those exactly (it pads with the type's minimum)."""
    pads = list(_attr(node, "pads", []) or [])
    kernel, strides = list(_attr(node, "kernel_shape", []) or []), list(_attr(node, "strides", []) or [])
    strides = strides or [1] * len(kernel)
    if node.op_type == "MaxPool" and (any(pads) or strides != kernel):
        return [(f"MaxPool with pads={pads}, strides={strides}, kernel_shape={kernel} in io_stream (hls4ml's "
                 "streaming pooling needs strides == kernel_shape and no pads; models with Convs stream by default)",
                 "compile with --io-type parallel, or pool without overlap or pads (stride = kernel)")]
    return []


def _pool(node: ir.Node) -> list[Problem]:
    problems = _spatial(node, node.op_type)
    if node.op_type == "AveragePool":
        # legalize-fpga turns every exact AveragePool into a depthwise Conv; QONNX's channels-last conversion
        # skips AveragePool, so hls4ml refuses what is left.
        pads = list(_attr(node, "pads", []) or [])
        if _attr(node, "ceil_mode", 0) or (any(pads) and not _attr(node, "count_include_pad", 0)):
            why = "ceil_mode=1" if _attr(node, "ceil_mode", 0) else f"pads={pads} with count_include_pad=0"
            problems.append((f"AveragePool with {why} (not lowered: its divisor varies at the border)",
                             "pad with count_include_pad=1, or without pads"))
        return problems or [("AveragePool on an input without static dims (it is lowered as a depthwise Conv)",
                             "give the model a static input shape")]
    # 1-D MaxPool: accelc's handler (accelc.hls.extensions.maxpool1d) replaces hls4ml's, which swaps W and C.
    pads = list(_attr(node, "pads", []) or [])
    if pads and pads[:len(pads) // 2] != pads[len(pads) // 2:]:
        # QONNX's channels-last MaxPool asserts "Uneven padding not supported" (legalize-fpga's ceil_mode and
        # auto_pad rewrites produce such pads too).
        problems.append((f"pads={pads} differ at the begin and end of an axis (QONNX's channels-last MaxPool "
                         "asserts on uneven padding)", "pad evenly, or pool without pads"))
    if _attr(node, "ceil_mode", 0):
        problems.append("ceil_mode=1 (hls4ml floors the output size)")
    if len(node.outputs) > 1 and (node.outputs[1].uses() or node.outputs[1].is_graph_output()):
        problems.append("MaxPool indices output is used")
    return problems


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _resize(node: ir.Node) -> list[Problem]:
    """accelc's Resize/Upsample handler (accelc.hls.extensions.resize) lowers nearest upsampling by whole factors
    of the spatial axes, where ONNX's coordinate rule reads input j // s (accelc.hls.resize_exact)."""
    from accelc.hls.resize_exact import DEFAULT_NEAREST, DEFAULT_TRANSFORM, repeats_pixels

    hint = "use nearest upsampling by whole factors (torch nn.Upsample(scale_factor=2, mode='nearest'))"
    mode = _text(_attr(node, "mode", "nearest"))
    if mode != "nearest":
        return [(f"mode={mode} (only nearest is lowered)", hint)]
    x, y = node.inputs[0], node.outputs[0]
    rank = _rank(x)
    if rank not in (3, 4):
        return [(f"rank-{rank} input (only 1-D and 2-D resizes are lowered)", hint)]
    if node.op_type == "Resize" and len(node.inputs) < 3:
        return [("an opset-10 Resize (scales as the second input)", "export with opset 11 or newer")]
    if _attr(node, "axes") is not None:
        return [("the axes attribute", "resize all axes with scales or sizes")]
    shape_in, shape_out = list(x.shape or []), list(y.shape or [])
    if not all(isinstance(d, int) for d in [*shape_in[1:], *shape_out[1:]]) or len(shape_out) != rank:
        return [("channel or spatial dims not static", "give the model a static input shape")]
    if shape_in[1] != shape_out[1] or (isinstance(shape_out[0], int) and shape_in[0] != shape_out[0]):
        return [(f"resizes the batch or channel axis ({shape_in} -> {shape_out})", hint)]
    inputs = list(node.inputs[1:])
    if any(v is not None and _const_value(v) is None for v in inputs):
        return [("scales/sizes are not constants", hint)]
    # The batch and channel entries of scales (1) or sizes (the input's own dims), as far as shapes cannot tell.
    sizes_at = 3 if node.op_type == "Resize" else None
    for i, v in enumerate(inputs, start=1):
        values = [] if v is None else [float(d) for d in _const_value(v).numpy().reshape(-1)]
        if i == 1 and node.op_type == "Resize" or len(values) != rank:
            continue  # roi, or an empty placeholder
        want = [float(d) if isinstance(d, int) else None for d in shape_in[:2]] if i == sizes_at else [1.0, 1.0]
        if values[:2] != want:
            return [(f"resizes the batch or channel axis ({'sizes' if i == sizes_at else 'scales'} "
                     f"{values}, input {shape_in})", hint)]
    if node.op_type == "Upsample":
        transform, nearest = "asymmetric", "floor"
    else:
        transform = _text(_attr(node, "coordinate_transformation_mode", DEFAULT_TRANSFORM))
        nearest = _text(_attr(node, "nearest_mode", DEFAULT_NEAREST))
    for length, out in zip(shape_in[2:], shape_out[2:]):
        if out % length:
            return [(f"output {shape_out[2:]} is not a whole multiple of the input {shape_in[2:]}", hint)]
        if not repeats_pixels(length, out, transform, nearest):
            return [(f"coordinate_transformation_mode={transform} with nearest_mode={nearest} for {length} -> {out} "
                     "(not plain pixel repetition)", "use asymmetric + floor (torch's default) or half_pixel + "
                     "round_prefer_floor (ONNX's default)")]
    return []


def _conv_transpose(node: ir.Node) -> list[Problem]:
    # legalize-fpga (conv-transpose) rewrote every ConvTranspose with constant weights into a Conv (strided ones
    # after a zero insertion: nearest Resize times a 0/1 mask) where exact; what is left here it declined.
    strides = list(_attr(node, "strides", []) or [])
    if any(s != 1 for s in strides) and _is_const(node.inputs[1]) and not _attr(node, "output_shape") and _attr(
            node, "auto_pad", "NOTSET") == "NOTSET":
        return [(f"strides={strides} with pads={list(_attr(node, 'pads', []) or [])} (zero insertion needs static "
                 "spatial input dims, and end pads + output_padding >= stride - 1 - (kernel - 1) * dilation)",
                 "give the model a static input shape, or use a kernel of at least the stride")]
    if not _is_const(node.inputs[1]):
        return ["weights are not a constant initializer"]
    return [("output_shape/auto_pad, or pads larger than the kernel span (a crop)",
             "export with explicit pads smaller than the kernel span")]


def _pad(node: ir.Node) -> list[Problem]:
    mode = _attr(node, "mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        return [(f"mode={mode} (only zero constant padding is lowered, folded into the next Conv)",
                 "pad inside the Conv (padding= on the conv) or with zeros")]
    return [("a Pad not folded into a Conv (only a zero constant Pad of the spatial axes read by Convs is lowered)",
             "pad with zeros right before a Conv, or use the Conv's pads attribute")]


def _global_pool(node: ir.Node) -> list[Problem]:
    return [(f"{node.op_type} not rewritten into a full-map pool (hls4ml's own global pooling reads the "
             "channels-last tensor as channels-first)",
             "give the model a static input shape (input_shape=...) so it becomes a full-map pool")]


def _reduction(node: ir.Node) -> list[Problem]:
    """What canonicalize's reduce-to-pool left (it makes a mean/max/sum over all spatial axes a global pool)."""
    axes, rank = reduce_axes(node), _rank(node.inputs[0])
    over = "non-constant axes" if axes is None else f"axes {axes}" if axes else "all axes"
    return [(f"{node.op_type} over {over} of a rank-{rank} tensor (hls4ml has no reduction layer)", "only a mean, "
             "max or sum over all spatial axes is lowered, as global pooling: x.mean((2, 3)), x.amax((2, 3)), "
             "x.sum((2, 3)), x.mean(2) after a Conv1d")]


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


def _axis_slices(node: ir.Node) -> tuple[int, int] | None:
    """(axis, n_inner) of a Softmax/LogSoftmax: the product of the axes after its axis. QONNX's channels-last
    conversion leaves these ops in the ONNX layout (behind a Transpose), so this is also what hls4ml sees."""
    shape = node.inputs[0].shape if node.inputs[0] is not None else None
    axis = _attr(node, "axis", -1)
    if shape is None or not all(isinstance(d, int) for d in shape[1:]):
        return None
    a = axis + len(shape) if axis < 0 else axis
    return a, math.prod(shape[a + 1 :])


def _last_axis(node: ir.Node) -> list[Problem]:
    """accelc's Softmax/LogSoftmax handlers (accelc.hls.extensions) normalize any non-batch axis of a rank 2-4
    input in io_parallel; checked in C simulation against ONNX Runtime on every axis, with and without Convs."""
    rank, axis = _rank(node.inputs[0]), _attr(node, "axis", -1)
    if rank is None or not 2 <= rank <= 4:
        return [(f"rank-{rank} input (lowered: rank 2-4 with static dims)", "")]
    if not -rank < axis < rank or axis in (0, -rank):
        return [(f"axis={axis} on a rank-{rank} input (the batch axis is not lowered)", "normalize a non-batch axis")]
    if _axis_slices(node) is None:
        return [(f"input of shape {node.inputs[0].shape} (needs static dims)", "give the model a static input shape")]
    return []


def _stream_axis(node: ir.Node) -> list[Problem]:
    """hls4ml's io_stream Softmax (and accelc's LogSoftmax) normalizes each stream word, i.e. the last axis;
    on another axis hls4ml asserts axis == -1 and aborts the process."""
    found = _axis_slices(node) if node.op_type in ("Softmax", "LogSoftmax") else None
    if found is not None and found[1] != 1:
        return [(f"axis={_attr(node, 'axis', -1)} of a {node.inputs[0].shape} tensor in io_stream (a streamed "
                 "Softmax normalizes the last axis only; models with Convs stream by default)",
                 "compile with --io-type parallel, or normalize the last axis")]
    return []


def _flatten(node: ir.Node) -> list[str]:
    return [] if _attr(node, "axis", 1) == 1 else [f"axis={_attr(node, 'axis')} (only axis=1)"]


def _transpose(node: ir.Node) -> list[Problem]:
    """canonicalize removes the layout Transposes it can prove are only that (cancelling pairs, one at an input,
    one before Flatten -> Dense); a Transpose left here really moves data inside the model."""
    perm = _attr(node, "perm")
    shown = list(perm) if perm is not None else "reversed axes"
    return [(f"a Transpose (perm={shown}) that moves data inside the model (canonicalization absorbs layout "
             "Transposes only at an input, before Flatten -> Dense, and where pairs cancel)", HINTS["Transpose"])]


def _reshape(node: ir.Node) -> list[str]:
    out_rank = _rank(node.outputs[0])
    if not _is_const(node.inputs[1]):
        return ["the target shape is not constant"]
    if (_rank(node.inputs[0]) or 0) > 2 and out_rank != 2:
        return ["reshape of a rank>2 tensor other than a flatten (channels-last changes the element order)"]
    return []


def _const_operand(node: ir.Node, x: ir.Value, c: ir.Value, const_first: bool) -> list[Problem]:
    """x op c: hls4ml's ApplyAlpha (scale/bias) layer, right in C simulation for scalar, per-channel and
    full-shape float constants on rank 2-4 tensors once accelc.hls.legalize.arith_constants dropped their batch axis."""
    if node.op_type == "Div" and const_first:
        return [("a constant divided by a tensor (only division by a constant is lowered)", "")]
    if c.const_value is None:
        return [("a quantized constant operand", "keep elementwise constants float")]
    shape, rank, out = tuple(c.const_value.shape), _rank(x), node.outputs[0].shape
    if rank is None or out is None or x.shape is None or list(out) != list(x.shape):
        return [(f"the constant of shape {list(shape)} broadcasts the tensor of shape {x.shape} to {out}",
                 "only a constant that broadcasts into the tensor's shape is lowered")]
    if rank > 4 or len(shape) >= rank:
        return [(f"a constant of shape {list(shape)} on a rank-{rank} tensor (lowered: ranks 2-4, no batch axis)",
                 "run the legalize-fpga pass (it drops a constant's leading 1s)")]
    return []


def _binary(node: ir.Node) -> list[Problem]:
    a, b = node.inputs[0], node.inputs[1]
    if node.op_type == "Add" and _is_const(b) and a.producer() is not None and a.producer().op_type == "MatMul":
        return []  # MatMul + bias: hls4ml merges them into one Dense layer
    if _is_const(a) != _is_const(b):
        return _const_operand(node, b if _is_const(a) else a, a if _is_const(a) else b, _is_const(a))
    if node.op_type == "Div":
        return ["two computed tensors (hls4ml's divide is only right by a constant)"]
    if a.shape is None or b.shape is None or list(a.shape) != list(b.shape):
        return [f"operands of shapes {a.shape} and {b.shape} (broadcasting is not lowered)"]
    return []


def _grouped_quantized(node: ir.Node) -> list[Problem]:
    """legalize-fpga's expand-grouped-conv expands grouped Convs with a constant weight only, not a quantized one."""
    if _attr(node, "group", 1) != 1 and node.inputs[1] is not None and node.inputs[1].const_value is None and _is_const(
            node.inputs[1]):
        return [("a grouped Conv with quantized weights (the block-diagonal expansion needs a float constant)",
                 "keep grouped/depthwise Convs float (onnxruntime quantize_static(nodes_to_exclude=[...]))")]
    return []


def _concat(node: ir.Node) -> list[Problem]:
    """hls4ml's Concatenate1d/2d/3d on any non-batch axis: checked in C simulation against ONNX Runtime on every
    axis of rank-3/4 tensors, with and without Convs (QONNX's channels-last keeps a Concat in the ONNX layout)."""
    rank, axis = _rank(node.outputs[0]), _attr(node, "axis", 1)
    if rank is None or not 2 <= rank <= 4:
        return [(f"rank-{rank} tensors (lowered: rank 2-4)", "")]
    if axis in (0, -rank):
        return [(f"axis={axis} (the batch axis is not lowered)", "concatenate a non-batch axis")]
    if len(node.inputs) != 2:
        return [(f"{len(node.inputs)} inputs (hls4ml merges exactly two tensors)", "chain two-input Concats")]
    if any(_is_const(v) for v in node.inputs):
        return [("a constant input (hls4ml concatenates two computed tensors only)", "")]
    return []


def _merge(node: ir.Node) -> list[Problem]:
    """Max/Min/Sum: hls4ml's Merge layer (maximum/minimum/add) of two same-shape tensors, checked in C simulation."""
    if len(node.inputs) != 2:
        return [(f"{len(node.inputs)} inputs (hls4ml merges exactly two tensors)", f"chain two-input {node.op_type}s")]
    a, b = node.inputs
    if a.shape is None or b.shape is None or list(a.shape) != list(b.shape):
        return [(f"operands of shapes {a.shape} and {b.shape} (broadcasting is not lowered)", "")]
    return []


def _batchnorm(node: ir.Node) -> list[str]:
    train = ["training_mode=1 (it normalizes with the batch's statistics)"] if _attr(node, "training_mode", 0) else []
    return train + ([] if all(_is_const(v) for v in node.inputs[1:5]) else ["statistics are not constants"])


def _ok(node: ir.Node) -> list[str]:
    return []


def _activation(node: ir.Node) -> list[Problem]:
    """hls4ml reads some attributes with defaults of its own, and ignores others."""
    if node.op_type in ("Elu", "ThresholdedRelu") and "alpha" not in node.attributes:
        return [("alpha not given (hls4ml would use 0.01, ONNX means 1.0)", "run the legalize-fpga pass (it sets it)")]
    if node.op_type == "Selu":
        wrong = {k: _attr(node, k, v) for k, v in SELU.items() if abs(_attr(node, k, v) - v) > 1e-6}
        if wrong:
            return [(f"{', '.join(f'{k}={v}' for k, v in wrong.items())} (hls4ml's selu hard-codes ONNX's defaults)",
                     "use Elu and a Mul, or the default Selu")]
    return []


def _clip(node: ir.Node) -> list[Problem]:
    """accelc's Clip extension reads constant scalar bounds (an absent min is filled by legalize-fpga)."""
    problems: list[Problem] = []
    for i, which in ((1, "min"), (2, "max")):
        bound = node.inputs[i] if len(node.inputs) > i else None
        if bound is None:
            if i == 1 and len(node.inputs) > 2 and node.inputs[2] is not None:
                problems.append(("min left out while max is given", "run the legalize-fpga pass (it fills it)"))
        elif bound.const_value is None or bound.const_value.size != 1:
            problems.append((f"{which} is not a constant scalar", "clip to constant bounds"))
    return problems


def _prelu(node: ir.Node) -> list[Problem]:
    # legalize-fpga rewrites PRelu with a constant slope; what is left has a computed slope.
    return [("the slope is not a float constant", "export PRelu with its slope as a weight")]


CHECKS: dict[str, Callable[[ir.Node], list[Problem]]] = {
    "Conv": _conv,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "ConvTranspose": _conv_transpose,
    "Resize": _resize,  # accelc's hls4ml handler
    "Upsample": _resize,
    "Pad": _pad,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    **dict.fromkeys(("ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                     "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"), _reduction),
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Softmax": _last_axis,
    "LogSoftmax": _last_axis,  # accelc's hls4ml extension layer
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Add": _binary,
    "Sub": _binary,
    "Mul": _binary,
    "Div": _binary,
    "Clip": _clip,
    "PRelu": _prelu,
    "Concat": _concat,
    "Max": _merge,
    "Min": _merge,
    "Sum": _merge,
    "BatchNormalization": _batchnorm,
    # Already-quantized models: QDQ chains and QONNX Quant nodes (accelc.hls.quantized_import).
    "QuantizeLinear": quant_problems,
    "DequantizeLinear": quant_problems,
    **{op: _activation for op in ACTIVATIONS},
}

HINTS = {
    "Transpose": "keep the model in one layout (no permute/transpose between layers), or transpose on the host",
    "Mean": "not lowered (hls4ml has no ONNX Mean handler); use Add and a Mul by 1/n",
}


def fpga_supports(model: ir.Model, backend: str = "vitis", io_type: str | None = None) -> list[Unsupported]:
    """Every node the fpga target would refuse or mistranslate with these fpga options (accelc's backend name,
    e.g. 'vitis'; io_type 'parallel' | 'stream' | None = chosen as accelc.hls.project does); an empty list
    means all are lowered."""
    from accelc.hls.extensions import EXTENSION_OPS, SUPPORTED_BACKENDS
    from accelc.hls.project import BACKENDS

    extensions_ok = BACKENDS.get(str(backend).lower()) in SUPPORTED_BACKENDS
    stream = _is_stream(model, str(io_type).lower() if io_type else None)
    found = edge_problems(model, TARGET)
    layout_only = {"Flatten", "Reshape", "Squeeze", "Unsqueeze"}
    if len(model.graph) and all(n.op_type in layout_only for n in model.graph):
        # hls4ml writes such a graph's output as its input variable: the C++ does not compile.
        node = next(iter(model.graph))
        found.append(Unsupported(node.op_type, node.name, TARGET, "a graph of layout ops only (no layer computes "
                                 "anything; hls4ml's project for it does not compile)", "reshape on the host"))
        return found
    for node in model.graph:
        quantization = is_quantization_node(node)  # incl. QONNX Quant, the Clip of QuantizeLinear -> Clip -> DQ
        check = quant_problems if quantization else CHECKS.get(node.op_type)
        if node.domain not in ("", "ai.onnx") and not quantization:
            found.append(Unsupported(node.op_type, node.name, TARGET, f"custom domain '{node.domain}'"))
        elif node.op_type in EXTENSION_OPS and not extensions_ok:
            found.append(Unsupported(node.op_type, node.name, TARGET, f"not lowered for the {backend} backend "
                                     "(accelc's hls4ml extension layer for it has Vivado/Vitis C++ only)",
                                     "compile with --backend vitis or vivado"))
        elif check is None:
            found.append(Unsupported(node.op_type, node.name, TARGET, "operator not lowered to hls4ml",
                                     HINTS.get(node.op_type, "see the README's table of supported ops")))
        else:
            for problem in [*check(node), *(_stream_pool(node) + _stream_axis(node) if stream else [])]:
                reason, hint = problem if isinstance(problem, tuple) else (problem, "")
                found.append(Unsupported(node.op_type, node.name, TARGET, reason, hint))
    return found
