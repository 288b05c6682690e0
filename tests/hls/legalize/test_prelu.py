"""PReluToRelu: one slope -> LeakyRelu, per-channel slopes -> Relu/Mul/Add; ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper

from accelc.hls.legalize import PReluToRelu


def _prelu(x_shape: list, slope: np.ndarray, slope_input: bool = False):
    inits = [] if slope_input else [const("s", slope)]
    inputs = {"x": x_shape, **({"s": list(slope.shape)} if slope_input else {})}
    return make([helper.make_node("PRelu", ["x", "s"], ["y"], name="prelu")], inputs, {"y": x_shape}, inits)


@pytest.mark.parametrize(("x_shape", "slope"), [([2, 8], np.array([0.25])), ([1, 3, 4, 5], np.full((3, 1, 1), 0.1)),
                                                 ([2, 8], np.array(0.3))])
def test_one_slope_becomes_leaky_relu(x_shape: list, slope: np.ndarray) -> None:
    proto = _prelu(x_shape, slope)
    model = ir.from_proto(proto)
    result = PReluToRelu()(model)
    assert ops(model) == ["LeakyRelu"] and result.stats["to_leaky_relu"] == 1
    node = next(iter(model.graph))
    assert node.name == "prelu" and node.attributes["alpha"].value == pytest.approx(float(slope.reshape(-1)[0]))
    assert not model.graph.initializers
    assert_same_outputs(proto, model, {"x": rand(*x_shape)})


@pytest.mark.parametrize(("x_shape", "slope_shape"), [([1, 3, 4, 5], (3, 1, 1)), ([1, 3, 4, 5], (1, 3, 1, 1)),
                                                      ([2, 8], (8,)), ([1, 3, 4, 5], (5,)), ([1, 4, 6], (4, 1))])
def test_per_channel_slopes_are_decomposed_exactly(x_shape: list, slope_shape: tuple) -> None:
    slope = np.random.default_rng(3).uniform(-0.5, 1.5, slope_shape).astype(np.float32)
    proto = _prelu(x_shape, slope)
    model = ir.from_proto(proto)
    result = PReluToRelu()(model)
    assert result.stats == {"to_leaky_relu": 0, "decomposed": 1}
    assert sorted(ops(model)) == ["Add", "Mul", "Mul", "Relu", "Relu"]
    last = [n for n in model.graph if n.outputs[0].name == "y"]
    assert [n.name for n in last] == ["prelu"] and last[0].op_type == "Add"
    assert "s" not in model.graph.initializers
    assert_same_outputs(proto, model, {"x": rand(*x_shape)}, atol=0)


def test_computed_slope_is_kept_with_a_warning() -> None:
    proto = _prelu([2, 8], np.zeros(8, np.float32), slope_input=True)
    model = ir.from_proto(proto)
    result = PReluToRelu()(model)
    assert ops(model) == ["PRelu"] and not result.modified and "not a float32 constant" in result.warnings[0]
