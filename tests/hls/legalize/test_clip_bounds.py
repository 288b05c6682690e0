"""ClipBounds: Clip(x, 0) -> Relu, absent min -> -FLT_MAX; ORT agrees before/after (opset 11+ inputs)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper

from accelc.hls.legalize import ClipBounds
from accelc.transforms.canonical import InferShapes


def _clip(inputs: list[str], inits: list, opset: int = 13):
    return make([helper.make_node("Clip", ["x", *inputs], ["y"], name="clip")], {"x": [2, 8]}, {"y": [2, 8]},
                inits, opset=opset)


@pytest.mark.parametrize("opset", [11, 13])
def test_min_zero_without_max_becomes_relu(opset: int) -> None:
    proto = _clip(["lo"], [const("lo", 0.0)], opset)
    model = ir.from_proto(proto)
    result = ClipBounds()(model)
    assert ops(model) == ["Relu"] and result.stats == {"to_relu": 1, "min_filled": 0}
    assert next(iter(model.graph)).name == "clip" and not model.graph.initializers
    assert_same_outputs(proto, model, {"x": rand(2, 8)}, atol=0)


def test_absent_min_is_filled_with_the_lowest_float() -> None:
    proto = _clip(["", "hi"], [const("hi", 0.7)])
    model = ir.from_proto(proto)
    InferShapes()(model)
    result = ClipBounds()(model)
    node = next(iter(model.graph))
    assert ops(model) == ["Clip"] and result.stats["min_filled"] == 1
    assert node.inputs[1].const_value.numpy().shape == () and node.inputs[1].const_value.numpy() == np.finfo(
        np.float32).min
    assert_same_outputs(proto, model, {"x": 1e30 * rand(2, 8)}, atol=0)


@pytest.mark.parametrize(("inputs", "inits"), [
    (["lo", "hi"], [const("lo", 0.0), const("hi", 6.0)]),  # ReLU6: the Clip extension lowers it
    (["lo"], [const("lo", -1.5)]),
    ([], []),
])
def test_other_clips_are_left(inputs: list, inits: list) -> None:
    proto = _clip(inputs, inits)
    model = ir.from_proto(proto)
    result = ClipBounds()(model)
    assert ops(model) == ["Clip"] and not result.modified
