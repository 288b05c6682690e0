"""AvgPoolToConv: AveragePool becomes a depthwise Conv of 1/window weights where exact; ORT agrees."""

from __future__ import annotations

import itertools

import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, make, ops, rand
from onnx import helper, shape_inference

from accelc.hls.legalize import AvgPoolToConv


@pytest.mark.parametrize("k,stride,pad,cip,dims", list(itertools.product([2, 3], [1, 2], [0, 1], [0, 1], [1, 2])))
def test_average_pool_becomes_conv(k: int, stride: int, pad: int, cip: int, dims: int) -> None:
    node = helper.make_node("AveragePool", ["x"], ["y"], name="pool", kernel_shape=[k] * dims, strides=[stride] * dims,
                            pads=[pad] * 2 * dims, count_include_pad=cip)
    shape = [7, 6][:dims]
    proto = shape_inference.infer_shapes(make([node], {"x": ["N", 3, *shape]}, {"y": ["N", 3, *[None] * dims]}))
    model = ir.from_proto(proto)
    result = AvgPoolToConv()(model)
    if pad and not cip:  # the border divisor would vary: kept, with the reason
        assert not result.modified and "count_include_pad=0" in result.warnings[0]
        return
    conv = next(iter(model.graph))
    assert result.modified and ops(model) == ["Conv"] and conv.name == "pool"
    assert conv.attributes["group"].value == 3
    assert_same_outputs(proto, model, {"x": rand(2, 3, *shape)})


def test_ceil_mode_is_kept() -> None:
    node = helper.make_node("AveragePool", ["x"], ["y"], name="pool", kernel_shape=[2], strides=[2], ceil_mode=1)
    model = ir.from_proto(make([node], {"x": ["N", 2, 7]}, {"y": ["N", 2, 4]}))
    assert not AvgPoolToConv()(model).modified
