"""PoolCeil: ceil_mode=1 becomes floor mode (plus end padding where ceil adds windows); ORT agrees."""

from __future__ import annotations

import itertools

import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, make, rand
from onnx import helper

from accelc.hls.legalize import PoolCeil

CASES = list(itertools.product(["MaxPool", "AveragePool"], [6, 7, 8], [2, 3], [1, 2, 3], [0, 1], [1, 2]))


@pytest.mark.parametrize("op,size,k,stride,pad,dims", CASES)
def test_ceil_mode_is_dropped_exactly(op: str, size: int, k: int, stride: int, pad: int, dims: int) -> None:
    if pad >= k:
        pytest.skip("ONNX needs pads smaller than the kernel")
    attrs = dict(kernel_shape=[k] * dims, strides=[stride] * dims, pads=[pad] * 2 * dims, ceil_mode=1)
    shape = [size, size + 1][:dims]
    node = helper.make_node(op, ["x"], ["y"], name="pool", **attrs)
    # No inferred output shape: onnx's inference skips the rule ORT and the spec apply to ceil_mode's last window.
    proto = make([node], {"x": ["N", 2, *shape]}, {"y": ["N", 2, *[None] * dims]}, opset=19)
    model = ir.from_proto(proto)
    result = PoolCeil()(model)
    assert result.modified
    assert next(iter(model.graph)).attributes["ceil_mode"].value == 0
    assert_same_outputs(proto, model, {"x": rand(2, 2, *shape)})


def test_count_include_pad_with_extra_windows_is_kept() -> None:
    node = helper.make_node("AveragePool", ["x"], ["y"], name="pool", kernel_shape=[2], strides=[2], ceil_mode=1,
                            count_include_pad=1)
    model = ir.from_proto(make([node], {"x": ["N", 2, 7]}, {"y": ["N", 2, 4]}))
    result = PoolCeil()(model)
    assert not result.modified and "count_include_pad=1" in result.warnings[0]
