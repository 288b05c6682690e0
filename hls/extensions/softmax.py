"""ONNX ``Softmax`` on any axis for hls4ml: accelc's handler in place of hls4ml's own.

hls4ml 1.3's ONNX handler keeps only ``axis`` and never sets ``n_outer``/``n_inner``, so on a rank-3/4
tensor its C++ normalizes over the whole flattened tensor (wrong on every axis, the last one included).
Its Keras path has what is needed: in io_parallel, ``softmax_multidim`` normalizes each of the
``n_outer * n_inner`` slices of ``n_slice`` elements strided by ``n_inner`` (row-major). This handler sets
them from the node's axis on the shape it is given, which is the tensor as hls4ml holds it (the graph after
QONNX's channels-last conversion: an op it does not convert keeps its NCHW input behind a Transpose).
io_stream normalizes each stream word (the last axis) and asserts ``axis == -1``: only ``n_inner == 1`` is
right there; accelc's support check refuses the rest before lowering.
"""

from __future__ import annotations

import math
from typing import Any

from hls4ml.converters.onnx_to_hls import get_onnx_attribute, layer_handlers
from hls4ml.model.types import FixedPrecisionType, RoundingMode, SaturationMode

ONNX_OP = "Softmax"
# The stable implementation looks 1 / sum(exp) up in a table indexed by the top log2(size) bits of the sum,
# which lies in [1, n_slice]. hls4ml's default index type ap_fixed<18,8> with 1024 entries steps by 0.25
# there (errors up to ~0.2 on small slices); an unsigned type just wide enough for n_slice and 4096 entries
# steps by at most 2^-7 for slices up to 16.
INV_TABLE_SIZE = 4096


class AxisError(ValueError):
    """An axis out of range for the input's rank (accelc's support check refuses these first)."""


def axis_slices(shape: list[int], axis: int) -> tuple[int, int, int]:
    """(n_outer, n_slice, n_inner) of normalizing ``shape`` (batch axis first) over ``axis``, ONNX-numbered."""
    rank = len(shape)
    a = axis + rank if axis < 0 else axis
    if not 1 <= a < rank:
        raise AxisError(f"axis={axis} on a rank-{rank} input (the batch axis 0 is not lowered)")
    return math.prod(shape[1:a]), int(shape[a]), math.prod(shape[a + 1 :])


def inverse_table_types(n_slice: int) -> dict[str, Any]:
    """Index and value types of the 1 / sum table for sums in [1, n_slice] (hls4ml's layer attributes)."""
    integer = max(1, math.ceil(math.log2(n_slice + 1)))
    sat = {"rounding_mode": RoundingMode.RND, "saturation_mode": SaturationMode.SAT}
    return {
        "inv_inp_t": FixedPrecisionType(18, integer, signed=False, **sat),
        "inv_table_t": FixedPrecisionType(18, 1, signed=False, **sat),  # 1 / sum lies in [1 / n_slice, 1]
        "inv_table_size": INV_TABLE_SIZE,
    }


def parse_softmax_layer(node: Any, input_names: list[str], input_shapes: list[list[int]], graph: Any) -> dict:
    """hls4ml ONNX handler: Softmax(axis) -> hls4ml Softmax with n_outer/n_inner for that axis."""
    n_outer, n_slice, n_inner = axis_slices(list(input_shapes[0]), int(get_onnx_attribute(node, "axis", -1)))
    return {
        "name": node.name,
        "class_name": "Softmax",
        "activation": "softmax",
        "inputs": input_names,
        "outputs": list(node.output),
        # io_stream asserts axis == -1 and normalizes stream words: right exactly when n_inner == 1.
        "axis": -1 if n_inner == 1 else int(get_onnx_attribute(node, "axis", -1)),
        "n_outer": n_outer,
        "n_inner": n_inner,
        **inverse_table_types(n_slice),
    }


def register_softmax() -> None:
    """Replace hls4ml's ONNX Softmax handler with ours (its registry refuses a second registration)."""
    layer_handlers[ONNX_OP] = parse_softmax_layer
