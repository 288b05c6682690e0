"""ONNX ``HardSigmoid`` for hls4ml: an ONNX handler onto hls4ml's own ``HardActivation`` layer.

hls4ml 1.3 left HardSigmoid out of its ONNX frontend (hls4ml issue 409), although its Keras path has a
``HardActivation`` layer computing ``clip(slope * x + shift, 0, 1)``: ONNX's HardSigmoid with
slope = alpha, shift = beta. That layer stores slope as ``ufixed<16,0>`` and shift as ``ufixed<2,0>`` by
default (Keras' 0.2 / 0.5): ONNX's beta = 0.5 fits, but torch's HardSwish decomposition (alpha = 1/6) and
arbitrary alpha/beta do not. The handler therefore sets ``slope_prec``/``shift_prec`` (attributes the layer
reads) to types that hold the given values with 16 fractional bits; the product in C++ is exact.
No C++ of our own: the layer's templates and ``nnet_activation.h`` come with every hls4ml backend.
"""

from __future__ import annotations

import math
from typing import Any

from hls4ml.converters.onnx_to_hls import get_onnx_attribute
from hls4ml.model.types import FixedPrecisionType

ONNX_OP = "HardSigmoid"
FRACTION_BITS = 16


def constant_precision(value: float) -> FixedPrecisionType:
    """A fixed-point type that holds ``value``'s integer part and FRACTION_BITS fractional bits."""
    signed = value < 0
    integer = max(math.ceil(math.log2(abs(value) + 1)), 0) + int(signed)
    return FixedPrecisionType(width=integer + FRACTION_BITS, integer=integer, signed=signed)


def parse_hardsigmoid_layer(node: Any, input_names: list[str], input_shapes: list[list[int]], graph: Any) -> dict:
    """hls4ml ONNX handler: HardSigmoid(alpha, beta) -> HardActivation(slope=alpha, shift=beta)."""
    alpha = float(get_onnx_attribute(node, "alpha", 0.2))  # ONNX defaults
    beta = float(get_onnx_attribute(node, "beta", 0.5))
    return {
        "name": node.name,
        "class_name": "HardActivation",
        "activation": "hard_sigmoid",
        "inputs": input_names,
        "outputs": list(node.output),
        "slope": alpha,
        "shift": beta,
        "slope_prec": constant_precision(alpha),
        "shift_prec": constant_precision(beta),
    }


def register_hardsigmoid() -> None:
    """Register the ONNX handler (the layer and its templates are hls4ml's); safe to call again."""
    from accelc.hls.extensions._registry import register_handler

    register_handler(ONNX_OP, parse_hardsigmoid_layer)
