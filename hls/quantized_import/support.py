"""The onnx-ir side: which quantization nodes accelc.hls.support accepts. See accelc.hls.quantized_import."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.frontend.qonnx import QDQ_OPS, QONNX_DOMAIN, QUANT_OPS
from accelc.frontend.qonnx_functions import is_function_node, parse_name

# Integer element types QCDQToQuant maps to a Quant bit width.
_INT_TYPES = {
    ir.DataType.INT8, ir.DataType.UINT8, ir.DataType.INT16, ir.DataType.UINT16, ir.DataType.INT32,
}
_HINT = "quantize per tensor with constant scales (onnxruntime quantize_static(per_channel=False), QDQ format)"


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
                                or (node.op_type in QUANT_OPS and node.domain == QONNX_DOMAIN)
                                or is_function_node(node)):
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
                                   or (u.op_type in QUANT_OPS and u.domain == QONNX_DOMAIN)
                                   or is_function_node(u) for u in users)
    if (node.domain == QONNX_DOMAIN and node.op_type in QUANT_OPS) or is_function_node(node):
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
    if node.outputs[0].is_graph_output():
        problems.append("its integer output is a graph output (only QuantizeLinear -> DequantizeLinear pairs are "
                        "lowered, not integer outputs)")
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
    if is_function_node(node):
        return _function_problems(node)
    return [f"{op} is not a quantization op"]


# hls4ml 1.3's Quant handler maps these QONNX rounding modes to ap_fixed quantization modes
_HLS4ML_ROUNDING = {"ROUND": "AP_RND_CONV", "FLOOR": "AP_TRN"}


def _function_problems(node: ir.Node) -> list[str | tuple[str, str]]:
    """A QONNX quantizer the frontend kept as a function call (accelc.frontend.qonnx_functions); the fpga target
    gives it back to hls4ml as the Quant / BipolarQuant node it stands for."""
    spec = parse_name(node.op_type)
    scale = _const(node.inputs[1])
    problems: list[str | tuple[str, str]] = []
    if scale is None:
        return [("the scale is not a constant", _HINT)]
    if spec["op"] == "Trunc":
        return _trunc_problems(node, spec)
    if np.any(np.asarray(scale) <= 0):
        problems.append("a scale that is not positive")
    zero = _const(node.inputs[2]) if spec["op"] == "Quant" else np.zeros(1)
    if spec["op"] == "Quant":
        if zero is None or _const(node.inputs[3]) is None:
            return [("the zero point or bit width is not a constant", _HINT)]
        if spec["bipolar"] and np.any(zero):
            problems.append("a 1-bit signed Quant with a nonzero zero point (hls4ml lowers 1-bit quantizers as "
                            "BipolarQuant, +-scale)")
        elif spec["narrow"] and not spec["signed"]:
            problems.append("narrow=1 with signed=0 (hls4ml lowers narrow ranges for signed integers only)")
        elif spec["rounding_mode"] not in _HLS4ML_ROUNDING and not _on_constant(node):  # (weights: computed)
            problems.append((f"rounding_mode={spec['rounding_mode']} (hls4ml 1.3 lowers ROUND as AP_RND_CONV and "
                             "FLOOR as AP_TRN; ap_fixed has no exact equivalent of the others it lowers)",
                             "train with ROUND or FLOOR, or compile for cpu"))
    return problems + _scale_use_problems(node, scale, zero)


def _scale_use_problems(node: ir.Node, scale: np.ndarray, zero: np.ndarray) -> list[str | tuple[str, str]]:
    """Shared by Quant nodes and their function form: per-tensor scales on activations, weight scales hls4ml can
    move below the product."""
    if not _on_constant(node):
        if not _scalar(scale) or not _scalar(zero):
            return [(f"per-channel activation quantization ({np.asarray(scale).size} scales on a computed "
                     "tensor); hls4ml lowers per-tensor activation scales only", _HINT)]
        return []
    return _weight_use_problems(node, scale, zero)


def _quant_problems(node: ir.Node) -> list[str | tuple[str, str]]:
    # accelc.prepare and the lowering handle Quant nodes (the tests lower QONNX models directly), but
    # accelc.compile cannot yet: its float reference and range calibration run ONNX Runtime, and its shape
    # inference does not know the op. The QDQ form it can compile carries the same bit widths.
    problems: list[str | tuple[str, str]] = [(
        "ONNX Runtime, which computes accelc's float reference, cannot run QONNX Quant nodes",
        "convert the model with accelc.frontend.qonnx.qonnx_to_qcdq() first (2 to 8 bits, zero offset, "
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
    return problems + _scale_use_problems(node, scale, zero)


def _trunc_problems(node: ir.Node, spec: dict) -> list[str | tuple[str, str]]:
    """Trunc v2 is lowered as a Quant at its output scale (accelc.hls.quantized_import.trunc_to_quant)."""
    hint = "compile for cpu, which computes Trunc as qonnx does"
    if spec["version"] == 1:
        return [("Trunc v1 (5 inputs: output on the input scale, no clamp) has no hls4ml lowering", hint)]
    params = [_const(v) for v in node.inputs[1:]]
    if any(p is None or np.asarray(p).size != 1 for p in params):
        return [("Trunc parameters that are not constant scalars", hint)]
    scale, _, _, out_scale, _ = (float(np.asarray(p).reshape(-1)[0]) for p in params)
    ratio = out_scale / scale if scale > 0 else 0.0
    problems: list[str | tuple[str, str]] = []
    if ratio <= 0 or np.frexp(ratio)[0] != 0.5:
        problems.append((f"output scale / input scale = {ratio:g} is not a power of two", hint))
    if spec["rounding_mode"] not in _HLS4ML_ROUNDING:
        problems.append((f"rounding_mode={spec['rounding_mode']} (hls4ml 1.3 lowers ROUND and FLOOR)", hint))
    return problems
