"""Already-quantized ONNX models on the fpga target: QDQ pairs and QONNX ``Quant`` nodes.

QDQ: ONNX Runtime's ``quantize_static(quant_format=QDQ)`` and torch.ao write QuantizeLinear ->
DequantizeLinear pairs around activations and DequantizeLinear on integer weights (QuantizeLinear on
float weights, and QuantizeLinear -> Clip -> DequantizeLinear for narrower integers, also occur). hls4ml
rejects those ops; QONNX's QCDQToQuant fuses each chain into one ``Quant`` node (domain
``qonnx.custom_op.general``, what Brevitas exports), which hls4ml 1.3 ingests:

- a Quant on a constant with a power-of-2 scale and zero offset becomes the constant's precision
  (``fixed<bits, bits + log2(scale)>``, hls4ml's FuseQuantWithConstant);
- a Quant on a computed tensor with such a scale becomes a linear activation whose output type is that
  fixed-point type (QuantToActivation), merged into the producing layer's result type when it can;
- any other scale or a nonzero zero point: the value is divided by the scale and offset (ApplyAlpha),
  rounded and saturated to an integer type (linear activation), and multiplied back (ApplyAlpha, "rescale")
  — on constants the integers are computed at conversion time, so only the rescale is left; hls4ml then
  moves rescales with zero offset below MatMul/Conv, so the dense layer multiplies integers, and fuses
  neighbouring ApplyAlphas (scale products, offsets divided by the next scale).

Where hls4ml 1.3 fails on what ONNX Runtime writes, accelc.hls.prepare rewrites exactly
(``fold_quantized_constants``: int32 biases, and the weights of a Conv whose input has a zero offset, become
the float constants they stand for; ``drop_requantization``: the identity re-quantization after MaxPool and
Flatten goes). The types (``quantized_layer_precisions``, used by accelc.hls.project) keep the integer grids
exact: the only inexact numbers are the fixed-point values of non-power-of-2 scales, at 24 significant bits.
What cannot be lowered so is refused by ``quant_problems`` (used by accelc.hls.support) before lowering.

The emulation then matches the QDQ graph executed as written (ONNX Runtime with ``session.disable_quant_qdq``,
or qonnx's executor). ONNX Runtime's default session fuses QDQ into int8 kernels that are not exact on CPUs
without VNNI (u8s8 products saturate in int16) unless the model was quantized with reduce_range=True.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import onnx
import onnx_ir as ir
from onnx import numpy_helper

from accelc.errors import AccelcError

QONNX_DOMAIN = "qonnx.custom_op.general"
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
# Integer element types QCDQToQuant maps to a Quant bit width.
_INT_TYPES = {
    ir.DataType.INT8, ir.DataType.UINT8, ir.DataType.INT16, ir.DataType.UINT16, ir.DataType.INT32,
}
# Significant bits kept for a non-power-of-2 scale (ApplyAlpha scale/bias types): float32 has 24.
ALPHA_SIGNIFICANT_BITS = 24
_HINT = "quantize per tensor with constant scales (onnxruntime quantize_static(per_channel=False), QDQ format)"


# --- onnx (protobuf) side: the rewrite accelc.hls.prepare applies -------------------------------------------


QUANT_OPS = ("Quant", "IntQuant")  # hls4ml parses both names of QONNX's integer quantizer


def is_quant(node: onnx.NodeProto) -> bool:
    return node.op_type in QUANT_OPS and node.domain == QONNX_DOMAIN


def has_quantization(graph: onnx.GraphProto) -> bool:
    return any(n.op_type in QDQ_OPS or is_quant(n) for n in graph.node)


def qdq_to_quant(model: onnx.ModelProto) -> onnx.ModelProto:
    """QuantizeLinear -> (Clip ->) DequantizeLinear chains, and DequantizeLinear on integer constants, into
    QONNX Quant nodes. Each Quant is named after the DequantizeLinear it replaces (whose output it keeps), so
    the node-name map of accelc.hls.prepare still traces it to the canonical node; zero points become float
    (hls4ml computes ``-zeropt * scale`` in the initializer's dtype, which wraps for uint8)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.qcdq_to_qonnx import QCDQToQuant

    _constants_to_initializers(model.graph)
    dq_names = {n.output[0]: n.name for n in model.graph.node if n.op_type == "DequantizeLinear"}
    w = ModelWrapper(model)
    if dq_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = w.transform(InferShapes()).transform(QCDQToQuant())
    graph = w.model.graph
    left = [n for n in graph.node if n.op_type in QDQ_OPS]
    if left:  # accelc.hls.support refuses these before lowering; this is the second line of defence
        raise AccelcError(f"{left[0].op_type} node '{left[0].name}' could not be fused into a QONNX Quant node "
                          "for hls4ml")
    inits = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if not is_quant(node):
            continue
        if node.output[0] in dq_names:
            node.name = dq_names[node.output[0]]
        for t in node.input[1:]:  # scale, zero point, bit width: float32 (QONNX's own convention)
            if t in inits and inits[t].data_type != onnx.TensorProto.FLOAT:
                a = numpy_helper.to_array(inits[t]).astype(np.float32)
                inits[t].CopyFrom(numpy_helper.from_array(a, t))
    del graph.value_info[:]  # stale integer types; re-inferred by the caller
    return w.model


def qonnx_to_qcdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """A QONNX model (Quant nodes, e.g. from Brevitas) as the equivalent QuantizeLinear -> (Clip ->)
    DequantizeLinear graph, which ONNX Runtime runs (the float reference and the cpu target need that) and
    which accelc.hls.prepare turns back into the same Quant nodes, bit widths included (the Clip bounds carry
    them). QONNX's QuantToQCDQ converts Quant nodes with constant parameters, zero offset, ROUND rounding and
    2 to 8 bits; any other Quant is refused here, naming it."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.qonnx_to_qcdq import QuantToQCDQ

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = ModelWrapper(model).transform(QuantToQCDQ()).model
    left = [n for n in converted.graph.node if is_quant(n) or n.op_type == "BipolarQuant"]
    if left:
        raise AccelcError(f"{left[0].op_type} node '{left[0].name}' has no QuantizeLinear/DequantizeLinear "
                          "equivalent (QuantToQCDQ needs constant parameters, zero offset, ROUND and 2 to 8 bits)")
    _constants_to_initializers(converted.graph)
    return converted


def _feeds_quantization_only(graph: onnx.GraphProto, tensor: str) -> bool:
    users = [n for n in graph.node if tensor in n.input]
    return bool(users) and all(n.op_type in QDQ_OPS + ("Clip",) or is_quant(n) for n in users)


def _constants_to_initializers(graph: onnx.GraphProto) -> None:
    """Constant nodes holding scales, zero points and Clip bounds (QONNX's QuantToQCDQ, torch exporters write
    them) become initializers: QCDQToQuant reads those parameters from initializers only."""
    for node in list(graph.node):
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.attribute) != 1:
            continue
        if not _feeds_quantization_only(graph, node.output[0]):
            continue
        attr = node.attribute[0]
        if attr.name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attr.t)
        elif attr.name in ("value_float", "value_int", "value_floats", "value_ints"):
            value = onnx.helper.get_attribute_value(attr)
            tensor = numpy_helper.from_array(np.asarray(value, np.float32 if "float" in attr.name else np.int64))
        else:
            continue
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        graph.node.remove(node)


def quantized_constant(graph: onnx.GraphProto, tensor: str) -> tuple[onnx.NodeProto, onnx.TensorProto] | None:
    """(Quant node, its constant input) when `tensor` is a Quant of an initializer used by nothing else."""
    inits = {i.name: i for i in graph.initializer}
    producer = next((n for n in graph.node if tensor in n.output), None)
    if producer is None or not is_quant(producer) or producer.input[0] not in inits:
        return None
    users = [n for n in graph.node if producer.input[0] in n.input or tensor in n.input]
    if len(users) != 2:
        return None
    return producer, inits[producer.input[0]]


def transpose_quantized_weight(graph: onnx.GraphProto, quant: onnx.NodeProto, init: onnx.TensorProto,
                               new_name: str) -> None:
    """Quant(W) -> Quant(W.T) in place, for Gemm(transB=1) -> MatMul; per-row scales become per-column."""
    inits = {i.name: i for i in graph.initializer}
    graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(init).T), new_name))
    quant.input[0] = new_name
    for k in (1, 2):
        t = inits.get(quant.input[k])
        if t is not None and len(t.dims) == 2:
            name = f"{new_name}_{'scale' if k == 1 else 'zeropt'}"
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(t).T), name))
            quant.input[k] = name


def scaled_products(graph: onnx.GraphProto) -> list[str]:
    """MatMul/Conv nodes with Quant weights: hls4ml computes them on the integer grid and rescales after, so
    their hls4ml outputs are not the ONNX node's values (the per-layer trace must not compare them)."""
    quant_outputs = {n.output[0] for n in graph.node if is_quant(n)}
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Conv") and len(n.input) > 1
            and n.input[1] in quant_outputs]


def _inits(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {i.name: i for i in graph.initializer}


# Ops whose outputs are some of their input values, rearranged: a tensor on an integer grid stays on it.
_VALUE_PRESERVING = ("Flatten", "Reshape", "Transpose", "MaxPool", "Squeeze", "Unsqueeze", "Identity")


def drop_requantization(graph: onnx.GraphProto) -> list[str]:
    """Remove each Quant that re-quantizes, with the same scale, zero point and integer type, values a
    Flatten/Reshape/Transpose/MaxPool took from an identical Quant: an exact identity. ONNX Runtime's QDQ
    quantizer writes such pairs after every MaxPool and Flatten; hls4ml would lower each as a
    scale/round/rescale, and in io_stream it mis-streams an ApplyAlpha after a Flatten (wrong numbers).
    Returns the names of the Quant nodes removed."""
    inits = _inits(graph)
    producers = {t: n for n in graph.node for t in n.output}

    def signature(q: onnx.NodeProto) -> tuple | None:
        if not all(t in inits for t in q.input[1:4]):
            return None
        params = tuple(numpy_helper.to_array(inits[t]).tobytes() + bytes(inits[t].dims) for t in q.input[1:4])
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in q.attribute}
        return params + (attrs.get("signed", 1), attrs.get("narrow", 0), attrs.get("rounding_mode", b"ROUND"))

    graph_outputs = {o.name for o in graph.output}
    removed = []
    for node in list(graph.node):
        if not is_quant(node) or node.input[0] in inits or node.output[0] in graph_outputs:
            continue
        between = producers.get(node.input[0])
        if between is None or not _value_preserving(between):
            continue
        source = producers.get(between.input[0])
        if source is None or not is_quant(source) or source.input[0] in inits:
            continue
        if signature(source) is None or signature(source) != signature(node):
            continue
        for user in graph.node:
            user.input[:] = [node.input[0] if t == node.output[0] else t for t in user.input]
        graph.node.remove(node)
        removed.append(node.name)
    return removed


def _value_preserving(node: onnx.NodeProto) -> bool:
    # qonnx's channels-last conversion moves MaxPool into its own domain
    return node.op_type in _VALUE_PRESERVING and node.domain in ("", "ai.onnx", "qonnx.custom_op.channels_last")


def _has_offset(node: onnx.NodeProto | None, inits: dict[str, onnx.TensorProto]) -> bool:
    """A Quant on a computed tensor with a nonzero zero point (ONNX Runtime's default uint8 activations)."""
    if node is None or not is_quant(node) or node.input[0] in inits or node.input[2] not in inits:
        return False
    return bool(np.any(numpy_helper.to_array(inits[node.input[2]])))


def fold_quantized_constants(graph: onnx.GraphProto) -> list[str]:
    """Quant(constant) -> the float constant it computes (exactly the value ONNX Runtime uses), where hls4ml
    cannot lower the Quant; returns the names of the Quant nodes folded.

    - biases (the Add after a MatMul, a Conv's third input): hls4ml turns a quantized bias into a Constant
      feeding an ApplyAlpha that no pass consumes (its rescale never equals the product's) and fails;
    - the weights of a Conv whose input is quantized with a zero offset: hls4ml moves a weight rescale below
      a Conv only when the input's rescale has no offset as well, and otherwise fails. With float weights
      the Conv computes on the dequantized input (types from quantized_layer_precisions).
    A folded bias is added in a type accelc.hls.project sets from its values (quantized_layer_precisions)."""
    from qonnx.custom_op.general.quant import quant

    inits = {i.name: i for i in graph.initializer}
    producers = {t: n for n in graph.node for t in n.output}
    fold = set()
    for node in graph.node:
        if node.op_type == "Conv" and len(node.input) > 2:
            fold.add(node.input[2])
        if node.op_type == "Conv" and _has_offset(producers.get(node.input[0]), inits):
            fold.add(node.input[1])
        elif node.op_type == "Add":
            a, b = node.input[0], node.input[1]
            for x, y in ((a, b), (b, a)):
                if x in producers and producers[x].op_type == "MatMul":
                    fold.add(y)
    folded = []
    for node in list(graph.node):
        if not is_quant(node) or node.output[0] not in fold or not all(t in inits for t in node.input[:4]):
            continue
        users = [n for n in graph.node if node.output[0] in n.input]
        if len(users) != 1:
            continue
        x, scale, zeropt, bits = (numpy_helper.to_array(inits[t]) for t in node.input[:4])
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        rounding = attrs.get("rounding_mode", b"ROUND")
        rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
        value = quant(x.astype(np.float32), scale, zeropt, bits, attrs.get("signed", 1), attrs.get("narrow", 0),
                      rounding)
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), node.output[0]))
        graph.node.remove(node)
        folded.append(node.name)
    return folded


def quant_parameters(graph: onnx.GraphProto) -> dict[str, dict]:
    """Quant node name -> its constant scale, zero point, bit width and signedness (for the hls4ml config)."""
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    out = {}
    for node in graph.node:
        if not is_quant(node) or not all(t in inits for t in node.input[1:4]):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        out[node.name] = {"scale": inits[node.input[1]], "zeropt": inits[node.input[2]],
                          "bitwidth": float(np.asarray(inits[node.input[3]]).reshape(-1)[0]),
                          "signed": bool(attrs.get("signed", 1)), "constant": node.input[0] in inits}
    return out


def is_power_of_two(scale: np.ndarray) -> bool:
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    return bool(s.size and np.all(s == s[0]) and s[0] > 0 and np.frexp(s[0])[0] == 0.5)


def alpha_precision(params: dict[str, dict], biases: list[np.ndarray] = ()) -> str:
    """One fixed-point type for every scale and offset hls4ml derives from a model's quantization.

    hls4ml turns non-power-of-2 scales and zero points into ApplyAlpha layers (x / s + z before the
    rounding, x * s - z * s after), then fuses neighbouring ones (products of scales, b / s + z), and a fused
    layer takes the type configured for the later of the two. So no per-layer type fits: this one holds
    the smallest product of two scales to ALPHA_SIGNIFICANT_BITS bits and the largest 1 / scale, zero
    point, bias or integer range with headroom."""
    scales = np.concatenate([np.abs(np.asarray(p["scale"], np.float64).reshape(-1)) for p in params.values()])
    scales = scales[scales > 0]
    big = [float(np.max(np.abs(np.asarray(p["zeropt"], np.float64)))) for p in params.values()]
    big += [2.0 ** min(p["bitwidth"], 32) for p in params.values() if not p["constant"]]  # b / s lands in range
    big += [float(np.max(np.abs(b))) for b in biases if np.size(b)]
    if scales.size:
        big.append(float(1 / scales.min()))
        smallest = float(scales.min()) ** 2
    else:
        smallest = 1.0
    hi = math.ceil(math.log2(max(big + [2.0]))) + 3  # sign, rounding carry and sums of fused offsets
    frac = ALPHA_SIGNIFICANT_BITS - 1 - min(math.floor(math.log2(smallest)), 0)
    return f"fixed<{hi + frac},{hi},RND,SAT>"


def value_precision(values: np.ndarray) -> str:
    """A fixed-point type holding constants to ALPHA_SIGNIFICANT_BITS bits of the largest."""
    top = float(np.max(np.abs(values))) if np.size(values) else 0.0
    exp = math.floor(math.log2(top)) if top > 0 else 0
    hi = max(exp + 2, 1)
    return f"fixed<{hi + max(ALPHA_SIGNIFICANT_BITS - 1 - exp, 0)},{hi},RND,SAT>"


def input_precision(p: dict) -> str:
    """The type of a model input that a Quant reads: it covers the Quant's integer range (beyond it the
    Quant saturates anyway) at ALPHA_SIGNIFICANT_BITS bits below the scale, so the rounding to the integer
    grid sees the float input, not an 18-bit approximation of it (which flips ~0.5% of the roundings)."""
    s = float(np.max(np.abs(p["scale"])))
    z = float(np.max(np.abs(p["zeropt"])))
    bits = min(p["bitwidth"], 32)
    span = (2.0 ** bits + z) * s
    hi = math.ceil(math.log2(span)) + 2
    frac = ALPHA_SIGNIFICANT_BITS - math.floor(math.log2(float(np.min(np.abs(p["scale"])))))
    return f"fixed<{max(hi + frac, 2)},{hi},RND,SAT>"


def quantized_layer_precisions(model: onnx.ModelProto) -> dict[str, dict[str, str]]:
    """hls4ml precision entries (layer name -> {type name: type}) for the layers whose types a quantized model
    fixes; accelc's range-derived types must not replace them. Empty for a float model.

    - a Quant: its integer type is hls4ml's own (bit width, signedness, log2 of a power-of-2 scale) and its
      result is left 'auto'; the ApplyAlpha layers a non-power-of-2 scale or a zero point becomes copy this
      entry, so it holds their scale and offset type (``alpha_precision``);
    - a MatMul/Conv with quantized weights computes on the integer grid (hls4ml moves the weight's rescale
      below it): accumulator and result are left 'auto', which hls4ml infers wide enough to be exact;
    - the (float) bias Add after it becomes an ApplyAlpha that may absorb a rescale: the same type, result 'auto'.
    """
    graph = model.graph
    params = quant_parameters(graph)
    if not params:
        return {}
    quant_outputs = {n.output[0] for n in graph.node if n.name in params}
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    products = {n.output[0]: n for n in graph.node
                if n.op_type in ("MatMul", "Conv") and len(n.input) > 1 and n.input[1] in quant_outputs}
    bias_adds = [n for n in graph.node if n.op_type == "Add" and n.input[0] in products and n.input[1] in inits]
    biases = [inits[n.input[1]] for n in bias_adds]
    biases += [inits[n.input[2]] for n in products.values() if len(n.input) > 2 and n.input[2] in inits]
    alpha = alpha_precision(params, biases)
    out: dict[str, dict[str, str]] = {}
    for name, p in params.items():
        po2 = is_power_of_two(p["scale"]) and not np.any(p["zeropt"])
        out[name] = {} if po2 else {"scale": alpha, "bias": alpha}
    graph_inputs = {i.name for i in graph.input}
    producers = {t: n for n in graph.node for t in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for t in node.input:
            consumers.setdefault(t, []).append(node)
    for node in graph.node:
        if node.name not in params or params[node.name]["constant"]:
            continue
        # Back from a Quant through layout ops (channels-last Transposes) to a model input: the input's type.
        t, path = node.input[0], []
        while t in producers and _value_preserving(producers[t]):
            path.append(producers[t].name)
            t = producers[t].input[0]
        if t in graph_inputs:
            for name in [t, *path]:
                out[name] = {"result": input_precision(params[node.name])}
        # Forward from a Quant through layout ops and max pooling: the values stay on its grid, types 'auto'.
        t = node.output[0]
        while len(consumers.get(t, [])) == 1 and _value_preserving(consumers[t][0]):
            nxt = consumers[t][0]
            out[nxt.name] = {"result": "auto", "accum": "auto"} if nxt.op_type == "MaxPool" else {"result": "auto"}
            t = nxt.output[0]
    for node in products.values():
        out[node.name] = {"bias": alpha}
    for node in graph.node:  # a Conv whose float weights fold_quantized_constants made: on the dequantized input
        if node.op_type == "Conv" and _has_offset(producers.get(node.input[0]), _inits(graph)):
            users = [n for n in graph.node if node.output[0] in n.input]
            out[node.name] = {"weight": value_precision(inits[node.input[1]]), "bias": alpha}
            if len(users) == 1 and users[0].name in params:
                # Set (not 'auto'), or hls4ml fuses the next ApplyAlpha into this Conv and fails on the shapes;
                # the Quant that reads it saturates beyond its own range anyway.
                out[node.name]["result"] = input_precision(params[users[0].name])
    for node in bias_adds:
        out[node.name] = {"scale": alpha, "bias": alpha}
    return out


# --- onnx-ir side: what accelc.hls.support accepts -----------------------------------------------------------


def _const(value: ir.Value | None) -> np.ndarray | None:
    if value is None or value.const_value is None:
        return None
    return value.const_value.numpy()


def constant_source(value: ir.Value | None) -> ir.Value | None:
    """The constant a value stands for: itself, or the constant under DequantizeLinear(const),
    DequantizeLinear(QuantizeLinear(const)) (with an optional Clip between) or Quant(const)."""
    if value is None:
        return None
    if value.const_value is not None:
        return value
    node = value.producer()
    while node is not None and (node.op_type in ("DequantizeLinear", "QuantizeLinear", "Clip")
                                or (node.op_type in QUANT_OPS and node.domain == QONNX_DOMAIN)):
        src = node.inputs[0]
        if src is None:
            return None
        if src.const_value is not None:
            return src
        node = src.producer()
    return None


def is_quantization_node(node: ir.Node) -> bool:
    """QuantizeLinear, DequantizeLinear, a QONNX Quant, the Clip of a QuantizeLinear -> Clip -> DequantizeLinear,
    or a Constant node that only those read (their scales, zero points, bounds)."""
    if node.domain in ("", "ai.onnx") and node.op_type in QDQ_OPS:
        return True
    if node.domain in ("", "ai.onnx") and node.op_type == "Constant":
        users = [u for u, _ in node.outputs[0].uses()]
        return bool(users) and all(u.op_type in QDQ_OPS or (u.op_type == "Clip" and is_quantization_node(u))
                                   or (u.op_type in QUANT_OPS and u.domain == QONNX_DOMAIN) for u in users)
    if node.domain == QONNX_DOMAIN and node.op_type in QUANT_OPS:
        return True
    if node.domain in ("", "ai.onnx") and node.op_type == "Clip" and node.inputs and node.inputs[0] is not None:
        producer = node.inputs[0].producer()
        return producer is not None and producer.op_type == "QuantizeLinear"
    return False


def _scalar(a: np.ndarray | None) -> bool:
    return a is not None and np.asarray(a).size == 1


def _on_constant(node: ir.Node) -> bool:
    return constant_source(node.outputs[0]) is not None


def _qdq_consumers(node: ir.Node) -> list[str]:
    """Problems with what reads a QuantizeLinear's integer output: only a DequantizeLinear (maybe via Clip)."""
    problems = []
    for user, _ in node.outputs[0].uses():
        if user.op_type == "Clip" and all(u.op_type == "DequantizeLinear" for u, _ in user.outputs[0].uses()):
            continue
        if user.op_type != "DequantizeLinear":
            problems.append(f"its integer output is read by {user.op_type} '{user.name}' (only QuantizeLinear -> "
                            "DequantizeLinear pairs are lowered, not integer arithmetic)")
            continue
        q_s, d_s = _const(node.inputs[1]), _const(user.inputs[1])
        q_z = _const(node.inputs[2]) if len(node.inputs) > 2 else None
        d_z = _const(user.inputs[2]) if len(user.inputs) > 2 else None
        same = (q_s is not None and d_s is not None and np.array_equal(q_s, d_s)
                and (q_z is None) == (d_z is None) and (q_z is None or np.array_equal(q_z, d_z)))
        if not same:
            problems.append(f"DequantizeLinear '{user.name}' uses another scale or zero point")
    return problems


def _linear_problems(node: ir.Node) -> list[str | tuple[str, str]]:
    """Checks shared by QuantizeLinear and DequantizeLinear."""
    problems: list[str | tuple[str, str]] = []
    scale = _const(node.inputs[1])
    zero = _const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    if scale is None or (len(node.inputs) > 2 and node.inputs[2] is not None and zero is None):
        return [("the scale or zero point is not a constant", _HINT)]
    if node.attributes.get("block_size") is not None and node.attributes["block_size"].value:
        problems.append(("blocked quantization (block_size) is not lowered", _HINT))
    int_type = node.inputs[2].dtype if zero is not None else (node.inputs[0].dtype if node.op_type ==
                                                              "DequantizeLinear" else ir.DataType.UINT8)
    if int_type is not None and int_type not in _INT_TYPES:
        problems.append((f"integer type {int_type.name} (only 8, 16 and 32-bit integers are lowered)", _HINT))
    if np.any(np.asarray(scale) <= 0):
        problems.append("a scale that is not positive")
    if not _scalar(scale) and not _on_constant(node):
        problems.append((f"per-channel activation quantization ({np.asarray(scale).size} scales on a computed "
                         "tensor); hls4ml lowers per-tensor activation scales only", _HINT))
    return problems


def _weight_use_problems(node: ir.Node, scale: np.ndarray | None, zero: np.ndarray | None) -> list:
    """A quantized constant with per-channel scales or a zero offset: hls4ml 1.3 moves such a rescale below a
    MatMul never and below a Conv only without a bias, leaving a product with a computed weight it cannot
    lower. (Biases are folded to float constants by fold_quantized_constants, so they may have either.)"""
    if _scalar(scale) and (zero is None or not np.any(zero)):
        return []
    what = f"per-channel scales ({np.asarray(scale).size})" if not _scalar(scale) else "a nonzero zero point"
    for user, index in node.outputs[0].uses():
        is_bias = (user.op_type in ("Conv", "Gemm") and index == 2) or user.op_type == "Add"
        if not is_bias:
            return [(f"a weight quantized with {what}, read by {user.op_type} '{user.name}' (hls4ml 1.3 cannot move "
                     "its rescaling below the product)", "quantize weights per tensor and symmetric "
                     "(onnxruntime quantize_static(per_channel=False), the default WeightSymmetric=True)")]
    return []


def quant_problems(node: ir.Node) -> list[str | tuple[str, str]]:
    """Why a QuantizeLinear / DequantizeLinear / QCDQ Clip / QONNX Quant node cannot be lowered exactly ([] = ok)."""
    op = node.op_type
    if op == "Constant":
        return []  # a quantization parameter; its users are checked
    if op == "QuantizeLinear":
        return _linear_problems(node) + _qdq_consumers(node)
    if op == "DequantizeLinear":
        src = node.inputs[0]
        producer = src.producer() if src is not None else None
        if src is None or (src.const_value is None and (producer is None or producer.op_type not in
                                                          ("QuantizeLinear", "Clip"))):
            what = "a graph input" if producer is None else f"{producer.op_type} '{producer.name}'"
            return [(f"it dequantizes {what}, not a QuantizeLinear or an integer constant (integer inputs and "
                     "integer arithmetic are not lowered)", _HINT)]
        problems = _linear_problems(node)
        if not problems and _on_constant(node):
            zero = _const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
            problems += _weight_use_problems(node, _const(node.inputs[1]), zero)
        return problems
    if op == "Clip":
        producer = node.inputs[0].producer() if node.inputs[0] is not None else None
        users = [u for u, _ in node.outputs[0].uses()]
        bounds = [_const(v) for v in node.inputs[1:3] if v is not None]
        if (producer is None or producer.op_type != "QuantizeLinear" or not users
                or any(u.op_type != "DequantizeLinear" for u in users)):
            return [("a Clip of integers that no DequantizeLinear reads (integer arithmetic is not lowered)", _HINT)]
        if len(bounds) != 2 or any(b is None or np.asarray(b).size != 1 for b in bounds):
            return [("the clipping bounds of a QuantizeLinear -> Clip -> DequantizeLinear chain are not two "
                     "constant scalars", _HINT)]
        if not (bounds[0] <= 0 < bounds[1]):
            return [(f"clipping bounds [{bounds[0]}, {bounds[1]}] do not include 0 and a positive value", _HINT)]
        return []
    if op in QUANT_OPS and node.domain == QONNX_DOMAIN:
        return _quant_problems(node)
    return [f"{op} is not a quantization op"]


def _quant_problems(node: ir.Node) -> list[str | tuple[str, str]]:
    # accelc.prepare and the lowering handle Quant nodes (the tests lower QONNX models directly), but
    # accelc.compile cannot yet: its float reference and range calibration run ONNX Runtime, and its shape
    # inference does not know the op. The QDQ form it can compile carries the same bit widths.
    problems: list[str | tuple[str, str]] = [(
        "ONNX Runtime, which computes accelc's float reference, cannot run QONNX Quant nodes",
        "convert the model with accelc.hls.quantized_import.qonnx_to_qcdq() first (2 to 8 bits, zero offset, "
        "ROUND): the fpga target turns it back into the same Quant nodes")]
    scale, zero, bits = (_const(v) for v in node.inputs[1:4])
    if scale is None or zero is None or bits is None:
        return [*problems, ("the scale, zero point or bit width is not a constant", _HINT)]
    rounding = node.attributes.get("rounding_mode")
    rounding = rounding.value if rounding is not None else "ROUND"
    if rounding not in ("ROUND", "FLOOR"):
        problems.append(f"rounding_mode={rounding} (hls4ml lowers ROUND and FLOOR)")
    narrow = node.attributes.get("narrow")
    signed = node.attributes.get("signed")
    if narrow is not None and narrow.value and signed is not None and not signed.value:
        problems.append("narrow=1 with signed=0 (hls4ml lowers narrow ranges for signed integers only)")
    b = np.asarray(bits).reshape(-1)
    if b.size != 1 or b[0] != round(float(b[0])) or not 1 <= b[0] <= 64:
        problems.append(f"bit width {b.tolist()} (one integer from 1 to 64 is lowered)")
    if np.any(np.asarray(scale) <= 0):
        problems.append("a scale that is not positive")
    if not _on_constant(node):
        if not _scalar(scale) or not _scalar(zero):
            problems.append((f"per-channel activation quantization ({np.asarray(scale).size} scales on a computed "
                             "tensor); hls4ml lowers per-tensor activation scales only", _HINT))
    else:
        problems += _weight_use_problems(node, scale, zero)
    return problems
