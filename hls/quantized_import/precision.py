"""The hls4ml types of the layers a quantized model fixes (used by accelc.hls.project). See
accelc.hls.quantized_import."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

from accelc.frontend.qonnx import QONNX_DOMAIN, is_quant
from accelc.hls.quantized_import._common import _has_offset, _inits, _value_preserving

# Significant bits kept for a non-power-of-2 scale (ApplyAlpha scale/bias types): float32 has 24.
ALPHA_SIGNIFICANT_BITS = 24


def quant_parameters(graph: onnx.GraphProto) -> dict[str, dict]:
    """Quant / BipolarQuant node name -> its constant scale, zero point, bit width and signedness (for the hls4ml
    config)."""
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    out = {}
    for node in graph.node:
        if node.op_type == "BipolarQuant" and node.domain == QONNX_DOMAIN and node.input[1] in inits:
            # +-scale: the integers -1 and 1, a narrow 2-bit signed grid
            out[node.name] = {"scale": inits[node.input[1]], "zeropt": np.zeros(()), "bitwidth": 2.0,
                              "signed": True, "constant": node.input[0] in inits}
            continue
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


def average_pool_precision(p: dict, weight: float) -> str:
    """The exact type of an average (weight 1/k, a power of two) of a Quant's values. With a power-of-2 scale they
    are the fixed-point values themselves; otherwise hls4ml has moved the Quant's rescale below the (linear) pool,
    which then averages the integers — not the float values its observed range describes, so a range-sized type
    saturates. (hls4ml's own 'auto' inference fails on a depthwise Conv.) A Trunc that follows floors the exact
    mean, as qonnx does."""
    unit = float(np.max(p["scale"])) if is_power_of_two(p["scale"]) and not np.any(p["zeropt"]) else 1.0
    top = 2.0 ** min(p["bitwidth"], 32) * unit
    integer = math.ceil(math.log2(top)) + 2  # sign and headroom
    frac = -math.floor(math.log2(unit)) + round(-math.log2(weight))
    return f"fixed<{max(integer + frac, 2)},{integer},TRN,SAT>"


def _is_average_pool(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> bool:
    """A depthwise Conv with one power-of-2 weight everywhere and no bias: an AveragePool (accelc's avgpool-to-conv)."""
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
        return False
    w = np.asarray(inits[node.input[1]], np.float64)
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    no_bias = len(node.input) < 3 or not node.input[2] or (node.input[2] in inits and not np.any(inits[node.input[2]]))
    # NCHW (O, 1, kh, kw) or, after channels-last, (O, kh, kw, 1)
    return bool(w.size and group == w.shape[0] and 1 in (w.shape[1], w.shape[-1]) and np.all(w == w.flat[0])
                and w.flat[0] > 0 and np.frexp(w.flat[0])[0] == 0.5 and no_bias)


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
        if len(consumers.get(t, [])) == 1 and _is_average_pool(consumers[t][0], inits):
            pool = consumers[t][0]
            exact = average_pool_precision(params[node.name], float(np.asarray(inits[pool.input[1]]).flat[0]))
            out[pool.name] = {"result": exact, "accum": exact}
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
