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

from accelc.frontend.qonnx import QDQ_OPS, QONNX_DOMAIN, QUANT_OPS, is_quant, qonnx_to_qcdq
from accelc.hls.quantized_import.precision import (
    ALPHA_SIGNIFICANT_BITS,
    alpha_precision,
    input_precision,
    is_power_of_two,
    quant_parameters,
    quantized_layer_precisions,
    value_precision,
)
from accelc.hls.quantized_import.rewrite import (
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
from accelc.hls.quantized_import.support import constant_source, is_quantization_node, quant_problems

__all__ = [
    "ALPHA_SIGNIFICANT_BITS", "QDQ_OPS", "QONNX_DOMAIN", "QUANT_OPS", "alpha_precision", "bipolar_weights_to_quant",
    "constant_source", "drop_requantization", "fold_quantized_constants", "has_quantization", "input_precision",
    "is_power_of_two", "is_quant", "is_quantization_node", "qdq_to_quant", "qonnx_to_qcdq", "quant_parameters",
    "quant_problems", "quantized_constant", "quantized_layer_precisions", "round_quantized_constants",
    "scaled_products", "transpose_quantized_weight", "trunc_to_quant", "value_precision",
]
