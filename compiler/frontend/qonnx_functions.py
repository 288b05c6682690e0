"""QONNX quantizers that QuantizeLinear/DequantizeLinear cannot express, as calls of model-local ONNX functions.

QCDQ (accelc.frontend.qonnx.qonnx_to_qcdq) expresses a Quant with 2 to 8 bits, ROUND rounding and a zero offset.
The rest — BipolarQuant (FINN's binary +-scale), Trunc (v1, v2), a 1-bit signed Quant (qonnx executes it as
bipolar), 9 to 24 bits, the other rounding modes (FLOOR, CEIL, UP, DOWN, HALF_UP, HALF_DOWN), a nonzero zero point
— becomes a node of
domain ``accelc.qonnx`` calling a function whose body is qonnx's own arithmetic in standard ONNX ops (Div, Add,
Clip, the rounding, Sub, Mul; Where for bipolar), in float32 as qonnx's numpy computes it: ONNX Runtime runs the
graph (float reference, calibration, cpu target) and gets qonnx's executor's numbers, and no pass can see into or
reorder the arithmetic. The node keeps the original inputs (x, scale, zero point, bit width) and its op name says
the rest (``Quant_FLOOR_s``: FLOOR, signed, not narrow; ``Quant_ROUND_un``: unsigned narrow; ``Quant_BIPOLAR``,
``Bipolar``, ``Trunc_FLOOR_s``, ``TruncV1_FLOOR``), so a target can turn it back into the QONNX node
(``functions_to_qonnx``; the fpga target does, for hls4ml). ONNX Runtime inlines the functions itself (the cpu/cuda
artifacts keep the calls); ``inline`` writes the plain-ONNX form for other runtimes.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

FUNCTION_DOMAIN = "accelc.qonnx"
ROUNDING_MODES = ("ROUND", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN")


def function_name(op: str, signed: bool = True, narrow: bool = False, rounding: str = "ROUND",
                  bits: float | None = None) -> str:
    """The function a QONNX node becomes (never a QONNX op's own name, which qonnx's tools match on whatever the
    domain): Bipolar (BipolarQuant), Quant_BIPOLAR (1-bit signed Quant), Quant_<MODE>_<s|u>[n], Trunc_<MODE>_<s|u>[n]
    (Trunc v2) and TruncV1_<MODE> (for Trunc, `bits` is the qonnx version: 1 or 2)."""
    if op == "BipolarQuant":
        return "Bipolar"
    if op == "Trunc":  # qonnx's Trunc v2 (6 inputs, what Brevitas writes) clamps to the output width; v1 (5) does not
        kind = f"{'s' if signed else 'u'}{'n' if narrow else ''}"
        return f"Trunc_{rounding.upper()}_{kind}" if bits != 1 else f"TruncV1_{rounding.upper()}"
    if bits == 1 and signed:
        return "Quant_BIPOLAR"
    return f"Quant_{rounding.upper()}_{'s' if signed else 'u'}{'n' if narrow else ''}"


def parse_name(name: str) -> dict:
    """The QONNX op and attributes a function name stands for (the inverse of function_name)."""
    if name == "Bipolar":
        return {"op": "BipolarQuant"}
    if name == "Quant_BIPOLAR":
        return {"op": "Quant", "signed": 1, "narrow": 0, "rounding_mode": "ROUND", "bipolar": True}
    if name.startswith("TruncV1_") and name.removeprefix("TruncV1_") in ROUNDING_MODES:
        return {"op": "Trunc", "version": 1, "rounding_mode": name.removeprefix("TruncV1_")}
    if name.startswith("Trunc_"):
        mode, _, kind = name.removeprefix("Trunc_").rpartition("_")
        if mode in ROUNDING_MODES and kind in ("s", "sn", "u", "un"):
            return {"op": "Trunc", "version": 2, "signed": int(kind[0] == "s"), "narrow": int(kind.endswith("n")),
                    "rounding_mode": mode}
        raise ValueError(f"not an accelc.qonnx function: {name}")
    mode, _, kind = name.removeprefix("Quant_").rpartition("_")
    if not name.startswith("Quant_") or mode not in ROUNDING_MODES or kind not in ("s", "sn", "u", "un"):
        raise ValueError(f"not an accelc.qonnx function: {name}")
    return {"op": "Quant", "signed": int(kind[0] == "s"), "narrow": int(kind.endswith("n")), "rounding_mode": mode,
            "bipolar": False}


def is_function_node(node) -> bool:
    """A call of one of these functions (an onnx NodeProto or an onnx-ir Node)."""
    return node.domain == FUNCTION_DOMAIN


def _const(name: str, value: float) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value_float=value)


def _rounding(mode: str, x: str, y: str) -> list[onnx.NodeProto]:
    """qonnx's resolve_rounding_mode in ONNX ops (Round is half to even, as np.round)."""
    simple = {"ROUND": "Round", "CEIL": "Ceil", "FLOOR": "Floor"}
    if mode in simple:
        return [helper.make_node(simple[mode], [x], [y])]
    sign, mag = [helper.make_node("Sign", [x], ["r_sign"]), helper.make_node("Abs", [x], ["r_abs"])]
    if mode == "UP":  # sign(x) * ceil(|x|)
        body = [helper.make_node("Ceil", ["r_abs"], ["r_mag"])]
    elif mode == "DOWN":  # np.fix
        body = [helper.make_node("Floor", ["r_abs"], ["r_mag"])]
    elif mode == "HALF_UP":  # sign(x) * floor(|x| + 0.5)
        body = [_const("r_half", 0.5), helper.make_node("Add", ["r_abs", "r_half"], ["r_shift"]),
                helper.make_node("Floor", ["r_shift"], ["r_mag"])]
    elif mode == "HALF_DOWN":  # sign(x) * ceil(|x| - 0.5)
        body = [_const("r_half", 0.5), helper.make_node("Sub", ["r_abs", "r_half"], ["r_shift"]),
                helper.make_node("Ceil", ["r_shift"], ["r_mag"])]
    else:
        raise ValueError(f"rounding mode {mode}")
    return [sign, mag, *body, helper.make_node("Mul", ["r_sign", "r_mag"], [y])]


def _bounds(signed: bool, narrow: bool, bitwidth: str = "bitwidth") -> list[onnx.NodeProto]:
    """qonnx's min_int/max_int of the bit-width input, as float32 scalars 'lo' and 'hi'."""
    # Clip takes scalar bounds; some tools write the bit width as a one-element tensor
    nodes = [_const("one", 1.0), _const("two", 2.0),
             helper.make_node("Constant", [], ["scalar_shape"], value=numpy_helper.from_array(np.zeros(0, np.int64))),
             helper.make_node("Reshape", [bitwidth, "scalar_shape"], ["bits"])]
    if signed:  # [-2^(b-1) (+1 if narrow), 2^(b-1) - 1]
        nodes += [helper.make_node("Sub", ["bits", "one"], ["b1"]),
                  helper.make_node("Pow", ["two", "b1"], ["half"]),
                  helper.make_node("Sub", ["half", "one"], ["hi"]),
                  helper.make_node("Neg", ["half"], ["lo_wide"])]
        nodes.append(helper.make_node("Add", ["lo_wide", "one"], ["lo"]) if narrow
                     else helper.make_node("Identity", ["lo_wide"], ["lo"]))
    else:  # [0, 2^b - 1 (-1 if narrow)]
        nodes += [helper.make_node("Pow", ["two", "bits"], ["full"]),
                  helper.make_node("Sub", ["full", "one"], ["hi_wide"]),
                  _const("lo", 0.0)]
        nodes.append(helper.make_node("Sub", ["hi_wide", "one"], ["hi"]) if narrow
                     else helper.make_node("Identity", ["hi_wide"], ["hi"]))
    return nodes


def make_function(name: str, opset: int) -> onnx.FunctionProto:
    """The function body for `name` (see function_name), qonnx's numpy arithmetic step by step in float32."""
    spec = parse_name(name)
    if spec["op"] == "BipolarQuant":  # np.where(x >= 0, 1, -1) * scale
        body = [_const("zero", 0.0), _const("one", 1.0), _const("minus_one", -1.0),
                helper.make_node("GreaterOrEqual", ["x", "zero"], ["nonneg"]),
                helper.make_node("Where", ["nonneg", "one", "minus_one"], ["sign"]),
                helper.make_node("Mul", ["sign", "scale"], ["y"])]
        return helper.make_function(FUNCTION_DOMAIN, name, ["x", "scale"], ["y"], body,
                                    [helper.make_opsetid("", opset)])
    body = [helper.make_node("Div", ["x", "scale"], ["scaled"]),
            helper.make_node("Add", ["scaled", "zeropt"], ["shifted"])]
    if spec["op"] == "Trunc":
        return _trunc_function(name, spec, body, opset)
    if spec["bipolar"]:  # qonnx: a 1-bit signed IntQuant is bipolar on the shifted value
        body += [_const("zero", 0.0), _const("one", 1.0), _const("minus_one", -1.0),
                 helper.make_node("GreaterOrEqual", ["shifted", "zero"], ["nonneg"]),
                 helper.make_node("Where", ["nonneg", "one", "minus_one"], ["integer"])]
    else:  # clamp, then round (qonnx's order; the same for every monotone rounding with integer bounds)
        body += _bounds(bool(spec["signed"]), bool(spec["narrow"]))
        body += [helper.make_node("Clip", ["shifted", "lo", "hi"], ["clamped"]),
                 *_rounding(spec["rounding_mode"], "clamped", "integer")]
    body += [helper.make_node("Sub", ["integer", "zeropt"], ["centred"]),
             helper.make_node("Mul", ["centred", "scale"], ["y"])]
    return helper.make_function(FUNCTION_DOMAIN, name, ["x", "scale", "zeropt", "bitwidth"], ["y"], body,
                                [helper.make_opsetid("", opset)])


def _trunc_function(name: str, spec: dict, body: list[onnx.NodeProto], opset: int) -> onnx.FunctionProto:
    """qonnx's trunc_v1 / trunc_v2: round onto the input grid, divide by the truncation scale, (v2: clamp to the
    output width,) round by the mode, rescale."""
    body = [*body, helper.make_node("Round", ["shifted"], ["on_grid"])]
    if spec["version"] == 1:  # / 2^(in - out); R; - zeropt; * scale
        inputs = ["x", "scale", "zeropt", "in_bits", "out_bits"]
        body += [_const("two", 2.0), helper.make_node("Sub", ["in_bits", "out_bits"], ["dropped"]),
                 helper.make_node("Pow", ["two", "dropped"], ["trunc_scale"]),
                 helper.make_node("Div", ["on_grid", "trunc_scale"], ["truncated"]),
                 *_rounding(spec["rounding_mode"], "truncated", "integer"),
                 helper.make_node("Sub", ["integer", "zeropt"], ["centred"]),
                 helper.make_node("Mul", ["centred", "scale"], ["y"])]
    else:  # trunc_scale = 2^round(log2(out_scale / scale)); / it; clamp; R; - zeropt / trunc_scale; * out_scale
        inputs = ["x", "scale", "zeropt", "in_bits", "out_scale", "out_bits"]
        body += [helper.make_node("Div", ["out_scale", "scale"], ["ratio"]),
                 helper.make_node("Log", ["ratio"], ["ln_ratio"]), _const("ln_two", float(np.log(np.float32(2)))),
                 helper.make_node("Div", ["ln_ratio", "ln_two"], ["log2_ratio"]),
                 helper.make_node("Round", ["log2_ratio"], ["shift"]),
                 _const("base", 2.0), helper.make_node("Pow", ["base", "shift"], ["trunc_scale"]),
                 helper.make_node("Div", ["on_grid", "trunc_scale"], ["truncated"]),
                 *_bounds(bool(spec["signed"]), bool(spec["narrow"]), "out_bits"),
                 helper.make_node("Clip", ["truncated", "lo", "hi"], ["clamped"]),
                 *_rounding(spec["rounding_mode"], "clamped", "integer"),
                 helper.make_node("Div", ["zeropt", "trunc_scale"], ["out_zeropt"]),
                 helper.make_node("Sub", ["integer", "out_zeropt"], ["centred"]),
                 helper.make_node("Mul", ["centred", "out_scale"], ["y"])]
    return helper.make_function(FUNCTION_DOMAIN, name, inputs, ["y"], body, [helper.make_opsetid("", opset)])


def to_function_call(model: onnx.ModelProto, node: onnx.NodeProto) -> None:
    """Turn a QONNX Quant/BipolarQuant/Trunc node (domain already normalized) into a call of its function, in place;
    adds the function and the domain's import to the model if missing."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    rounding = attrs.get("rounding_mode", b"FLOOR" if node.op_type == "Trunc" else b"ROUND")  # qonnx's defaults
    rounding = (rounding.decode() if isinstance(rounding, bytes) else str(rounding)).upper()
    rounding = "ROUND" if rounding == "HALF_EVEN" else rounding
    inits = {t.name: t for t in model.graph.initializer}
    bits = None
    if node.op_type == "Trunc":
        bits = 2 if len(node.input) == 6 else 1  # the qonnx version, told apart by the inputs
    elif node.op_type != "BipolarQuant" and len(node.input) > 3 and node.input[3] in inits:
        bits = float(onnx.numpy_helper.to_array(inits[node.input[3]]).reshape(-1)[0])
    name = function_name(node.op_type, bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0)), rounding, bits)
    node.op_type, node.domain = name, FUNCTION_DOMAIN
    del node.attribute[:]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if not any(f.domain == FUNCTION_DOMAIN and f.name == name for f in model.functions):
        model.functions.append(make_function(name, opset))
    if not any(o.domain == FUNCTION_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(FUNCTION_DOMAIN, 1))


def as_qonnx_node(node: onnx.NodeProto, qonnx_domain: str) -> None:
    """The function call back as the QONNX node it stands for, in place (a 1-bit signed Quant with a zero offset
    becomes BipolarQuant, which is how qonnx executes it)."""
    spec = parse_name(node.op_type)
    node.domain = qonnx_domain
    del node.attribute[:]
    if spec["op"] == "Trunc":
        node.op_type = "Trunc"
        node.attribute.extend([helper.make_attribute(k, spec[k]) for k in ("signed", "narrow") if k in spec])
        node.attribute.append(helper.make_attribute("rounding_mode", spec["rounding_mode"]))
        return
    if spec["op"] == "BipolarQuant" or spec["bipolar"]:  # a bipolar Quant: the caller checked its zero point is 0
        node.op_type = "BipolarQuant"
        del node.input[2:]
        return
    node.op_type = "Quant"
    node.attribute.extend([helper.make_attribute("signed", spec["signed"]),
                           helper.make_attribute("narrow", spec["narrow"]),
                           helper.make_attribute("rounding_mode", spec["rounding_mode"])])


def functions_to_qonnx(model: onnx.ModelProto, qonnx_domain: str) -> int:
    """Every call of these functions back as its QONNX node, in place; drops the functions and their domain's
    import, imports the QONNX domain. Returns how many nodes it turned back."""
    nodes = [n for n in model.graph.node if is_function_node(n)]
    for node in nodes:
        as_qonnx_node(node, qonnx_domain)
    keep = [f for f in model.functions if f.domain != FUNCTION_DOMAIN]
    del model.functions[:]
    model.functions.extend(keep)
    imports = [o for o in model.opset_import if o.domain != FUNCTION_DOMAIN]
    if nodes and not any(o.domain == qonnx_domain for o in imports):
        imports.append(helper.make_opsetid(qonnx_domain, 1))
    del model.opset_import[:]
    model.opset_import.extend(imports)
    return len(nodes)


def inline(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every accelc.qonnx call replaced by its body (plain ONNX, for ONNX Runtime artifacts)."""
    if not any(f.domain == FUNCTION_DOMAIN for f in model.functions):
        return model
    import onnx.inliner

    out = onnx.inliner.inline_local_functions(model)
    keep = [o for o in out.opset_import if o.domain != FUNCTION_DOMAIN]
    del out.opset_import[:]
    out.opset_import.extend(keep)
    return out
