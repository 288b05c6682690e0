"""ONNX 1-D ``MaxPool`` for hls4ml: an ONNX handler that reads the channels-last dims right.

hls4ml 1.3's ONNX pooling handler, for a rank-3 input, takes width and channels from the channels-first
positions although QONNX has already made the tensor channels-last (N, W, C), and never sets ``pad_left``/
``pad_right`` ("Attribute pad_left of layer (Pooling1D) not set"). This handler fills hls4ml's own
``MaxPooling1D`` layer (its templates and C++, io_parallel and io_stream) correctly and hands 2-D pools to
hls4ml's handler unchanged.
"""

from __future__ import annotations

from typing import Any

from hls4ml.converters.onnx.pooling import parse_pool_layer as hls4ml_parse_pool_layer
from hls4ml.converters.onnx_to_hls import get_onnx_attribute

from accelc.errors import AccelcError

ONNX_OP = "MaxPool"


class UnsupportedMaxPoolError(AccelcError, ValueError):
    """A 1-D MaxPool the handler cannot lower (dilated); accelc's support check refuses it first."""


def parse_maxpool_layer(node: Any, input_names: list[str], input_shapes: list[list[int]], graph: Any) -> dict:
    """hls4ml ONNX handler: 1-D MaxPool on (N, W, C) -> ``MaxPooling1D``; other ranks -> hls4ml's handler."""
    if len(input_shapes[0]) != 3:
        return hls4ml_parse_pool_layer(node, input_names, input_shapes, graph)
    if node.domain != "qonnx.custom_op.channels_last":
        raise UnsupportedMaxPoolError(f"MaxPool node {node.name!r}: input is not channels-last (run QONNX's "
                                      "ConvertToChannelsLastAndClean first)")
    kernel = get_onnx_attribute(node, "kernel_shape")[0]
    stride = (get_onnx_attribute(node, "strides") or [1])[0]
    pads = list(get_onnx_attribute(node, "pads") or [0, 0])
    if any(d != 1 for d in get_onnx_attribute(node, "dilations") or [1]):
        raise UnsupportedMaxPoolError(f"MaxPool node {node.name!r}: dilations are not lowered")
    _, width, channels = input_shapes[0]
    return {
        "name": node.name,
        "class_name": "MaxPooling1D",
        "inputs": input_names,
        "outputs": list(node.output),
        "data_format": "channels_last",
        "n_in": width,
        "n_filt": channels,
        "pool_width": kernel,
        "stride_width": stride,
        "pad_left": pads[0],
        "pad_right": pads[1],
        "n_out": (width + pads[0] + pads[1] - kernel) // stride + 1,  # ONNX's floor (ceil_mode is refused)
    }


def register_maxpool1d() -> None:
    """Replace hls4ml's MaxPool handler by ours (which delegates 2-D back to it); safe to call again."""
    from hls4ml.converters.onnx_to_hls import layer_handlers

    from accelc.hls.extensions._registry import register_handler

    if layer_handlers.get(ONNX_OP) is not parse_maxpool_layer:
        layer_handlers.pop(ONNX_OP, None)
    register_handler(ONNX_OP, parse_maxpool_layer)


__all__ = ["UnsupportedMaxPoolError", "parse_maxpool_layer", "register_maxpool1d"]
