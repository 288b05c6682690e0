"""Helpers the rewrite (accelc.hls.quantized_import.rewrite) and the types (.precision) share."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from accelc.frontend.qonnx import is_quant


def _inits(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {i.name: i for i in graph.initializer}


# Ops whose outputs are some of their input values, rearranged: a tensor on an integer grid stays on it.
_VALUE_PRESERVING = ("Flatten", "Reshape", "Transpose", "MaxPool", "Squeeze", "Unsqueeze", "Identity")


def _value_preserving(node: onnx.NodeProto) -> bool:
    # qonnx's channels-last conversion moves MaxPool into its own domain
    return node.op_type in _VALUE_PRESERVING and node.domain in ("", "ai.onnx", "qonnx.custom_op.channels_last")


def _has_offset(node: onnx.NodeProto | None, inits: dict[str, onnx.TensorProto]) -> bool:
    """A Quant on a computed tensor with a nonzero zero point (ONNX Runtime's default uint8 activations)."""
    if node is None or not is_quant(node) or node.input[0] in inits or node.input[2] not in inits:
        return False
    return bool(np.any(numpy_helper.to_array(inits[node.input[2]])))
