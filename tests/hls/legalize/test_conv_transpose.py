"""ConvTransposeToConv: ConvTranspose becomes a Conv with the flipped kernel (after zero insertion when strided:
nearest Resize times a 0/1 mask); ORT agrees."""

from __future__ import annotations

import itertools

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper, shape_inference

from accelc.hls.legalize import ConvTransposeToConv


def _model(dims: int, group: int = 1, **attrs):
    rng = np.random.default_rng(4)
    k = [3, 2][:dims]
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="deconv", group=group, **attrs)
    inits = [const("w", rng.standard_normal((4, 6 // group, *k))), const("b", rng.standard_normal(6))]
    proto = make([node], {"x": ["N", 4, *[5, 6][:dims]]}, {"y": ["N", 6, *[None] * dims]}, inits)
    return shape_inference.infer_shapes(proto)


# output_padding stays 0: ONNX Runtime needs it smaller than the stride, which is 1 here.
@pytest.mark.parametrize("dims,group,pad,dil", list(itertools.product([1, 2], [1, 2], [0, 1, 2], [1, 2])))
def test_unit_stride_becomes_conv(dims: int, group: int, pad: int, dil: int) -> None:
    proto = _model(dims, group, pads=[pad] * 2 * dims, dilations=[dil] * dims)
    model = ir.from_proto(proto)
    result = ConvTransposeToConv()(model)
    if any(pad > (k - 1) * dil for k in [3, 2][:dims]):  # a crop: no Conv pads express it
        assert not result.modified and "crop" in result.warnings[0]
        return
    assert result.modified and ops(model) == ["Conv"] and next(iter(model.graph)).name == "deconv"
    assert result.stats == {"rewritten": {"ConvTranspose": 1}}
    assert_same_outputs(proto, model, {"x": rand(2, 4, *[5, 6][:dims])})


@pytest.mark.parametrize("dims,group,stride,pad,extra", [(1, 1, 2, 0, 0), (1, 2, 3, 1, 1), (2, 1, 2, 1, 1),
                                                         (2, 2, 2, 0, 1), (2, 1, 2, 0, 0)])
def test_strided_becomes_zero_insertion_and_conv(dims: int, group: int, stride: int, pad: int, extra: int) -> None:
    proto = _model(dims, group, strides=[stride] * dims, pads=[pad] * 2 * dims, output_padding=[extra] * dims)
    model = ir.from_proto(proto)
    result = ConvTransposeToConv()(model)
    assert result.modified and ops(model) == ["Resize", "Mul", "Conv"], result.warnings
    assert_same_outputs(proto, model, {"x": rand(2, 4, *[5, 6][:dims])})


@pytest.mark.parametrize("attrs,why", [({"strides": [3, 3]}, "cannot absorb"), ({"pads": [3, 0, 0, 0]}, "crop"),
                                       ({"auto_pad": "SAME_UPPER"}, "auto_pad")])
def test_other_forms_are_kept(attrs: dict, why: str) -> None:
    model = ir.from_proto(_model(2, **attrs))
    result = ConvTransposeToConv()(model)
    assert not result.modified and why in result.warnings[0]
