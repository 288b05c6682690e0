"""SpatialDefaults: Conv/MaxPool/AveragePool defaults written down for hls4ml's parser; ONNX Runtime agrees."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, rand
from onnx import helper

from accelc.hls.legalize import SpatialDefaults


def _attrs(node: ir.Node) -> dict:
    return {name: a.value if isinstance(a.value, int) else list(a.value) for name, a in node.attributes.items()
            if name != "auto_pad"}


@pytest.mark.parametrize("dims", [1, 2])
def test_every_default_is_made_explicit(dims: int) -> None:
    rng = np.random.default_rng(4)
    k = [3, 2][:dims]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),  # kernel_shape from the weight
        helper.make_node("MaxPool", ["c"], ["m"], name="max", kernel_shape=[2] * dims),
        helper.make_node("AveragePool", ["m"], ["y"], name="avg", kernel_shape=[2] * dims, strides=[2] * dims),
    ]
    size = [9, 8][:dims]
    out = [(s - kk + 1 - 1) // 2 for s, kk in zip(size, k)]
    proto = make(nodes, {"x": ["N", 2, *size]}, {"y": ["N", 3, *out]}, [const("w", rng.standard_normal((3, 2, *k)))])
    model = ir.from_proto(proto)
    result = SpatialDefaults()(model)
    assert result.modified and result.stats == {"explicit": {"Conv": 1, "MaxPool": 1, "AveragePool": 1}}
    conv, pool, avg = model.graph
    assert _attrs(conv) == {"kernel_shape": k, "strides": [1] * dims, "pads": [0] * 2 * dims,
                            "dilations": [1] * dims, "group": 1}
    assert _attrs(pool) == {"kernel_shape": [2] * dims, "strides": [1] * dims, "pads": [0] * 2 * dims,
                            "dilations": [1] * dims}
    assert _attrs(avg) == {"kernel_shape": [2] * dims, "strides": [2] * dims, "pads": [0] * 2 * dims}  # no dilations
    assert [n.name for n in model.graph] == ["conv", "max", "avg"]
    assert_same_outputs(proto, model, {"x": rand(2, 2, *size)})
    assert not SpatialDefaults()(model).modified  # nothing left to write


def test_given_values_are_kept_and_valid_becomes_zero_pads() -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", auto_pad="VALID", strides=[2, 2], group=2)
    proto = make([node], {"x": ["N", 4, 7, 7]}, {"y": ["N", 2, 3, 3]}, [const("w", rand(2, 2, 3, 3))])
    model = ir.from_proto(proto)
    assert SpatialDefaults()(model).modified
    (conv,) = model.graph
    assert "auto_pad" not in conv.attributes
    assert _attrs(conv) == {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 0, 0], "dilations": [1, 1],
                            "group": 2}
    assert_same_outputs(proto, model, {"x": rand(2, 4, 7, 7)})


def test_unresolved_same_padding_and_computed_weights_are_left_with_the_reason() -> None:
    nodes = [helper.make_node("MaxPool", ["x"], ["m"], name="same", kernel_shape=[3], auto_pad="SAME_UPPER"),
             helper.make_node("Conv", ["m", "w"], ["y"], name="dynamic")]
    proto = make(nodes, {"x": ["N", 2, "L"], "w": [2, 2, 3]}, {"y": ["N", 2, None]})
    model = ir.from_proto(proto)
    result = SpatialDefaults()(model)
    same, dynamic = model.graph
    assert result.modified and same.attributes["auto_pad"].value == "SAME_UPPER" and "pads" not in same.attributes
    assert _attrs(same) == {"kernel_shape": [3], "strides": [1], "dilations": [1]}
    assert not dynamic.attributes
    assert result.warnings == ["MaxPool 'same': auto_pad=SAME_UPPER kept, no pads written",
                               "Conv 'dynamic' kept: no kernel_shape and no constant weight"]
    assert_same_outputs(proto, model, {"x": rand(2, 2, 9), "w": rand(2, 2, 3, seed=1)})
