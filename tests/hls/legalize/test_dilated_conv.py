"""DilatedConv: dilations become zeros inside a dense kernel; ONNX Runtime agrees before/after."""

from __future__ import annotations

import itertools

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, rand
from onnx import helper

from accelc.hls.legalize import DilatedConv


@pytest.mark.parametrize("dil,stride,pad,group,dims",
                         list(itertools.product([2, 3], [1, 2], [0, 2], [1, 2], [1, 2])))
def test_dilated_conv_is_dense(dil: int, stride: int, pad: int, group: int, dims: int) -> None:
    size, k = [9, 10][:dims], [3, 2][:dims]
    rng = np.random.default_rng(2)
    out = [(s + 2 * pad - (kk - 1) * dil - 1) // stride + 1 for s, kk in zip(size, k)]
    proto = make([helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", dilations=[dil] * dims,
                                   strides=[stride] * dims, pads=[pad] * 2 * dims, group=group)],
                 {"x": ["N", 4, *size]}, {"y": ["N", 4, *out]},
                 [const("w", rng.standard_normal((4, 4 // group, *k))), const("b", rng.standard_normal(4))])
    model = ir.from_proto(proto)
    result = DilatedConv()(model)
    node = next(iter(model.graph))
    assert result.modified and result.stats == {"rewritten": {"Conv:dilated": 1}}
    assert list(node.attributes["dilations"].value) == [1] * dims
    assert list(node.attributes["kernel_shape"].value) == [(kk - 1) * dil + 1 for kk in k]
    assert "w" not in model.graph.initializers  # the sparse original is dropped
    assert_same_outputs(proto, model, {"x": rand(2, 4, *size)})


def test_undilated_conv_is_left_alone() -> None:
    proto = make([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", dilations=[1, 1])],
                 {"x": ["N", 1, 4, 4]}, {"y": ["N", 1, 2, 2]}, [const("w", np.ones((1, 1, 3, 3)))])
    model = ir.from_proto(proto)
    assert not DilatedConv()(model).modified
