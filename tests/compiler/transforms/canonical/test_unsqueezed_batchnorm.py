"""UnsqueezedBatchNorm: Unsqueeze -> BatchNormalization -> Squeeze becomes one BatchNormalization (then foldable
into the Gemm before it); ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper, numpy_helper

from accelc.transforms.canonical import FoldBatchNorm, UnsqueezedBatchNorm

C = 6


def _model(up: list[int], down: list[int], opset: int = 13, squeeze_is_output: bool = False):
    """Gemm(8 -> C) -> Unsqueeze(up) -> BatchNormalization -> Squeeze(down) [-> Relu]."""
    rng = np.random.default_rng(0)
    out = "y" if squeeze_is_output else "sq"
    def axes(node: str, inp: str, outp: str, values: list[int], name: str):
        if opset >= 13:
            return helper.make_node(node, [inp, name], [outp], name=node.lower())
        return helper.make_node(node, [inp], [outp], name=node.lower(), axes=values)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["g"], name="gemm", transB=1),
        axes("Unsqueeze", "g", "u", up, "up"),
        helper.make_node("BatchNormalization", ["u", "s", "bb", "m", "v"], ["n"], name="bn", epsilon=1e-5),
        axes("Squeeze", "n", out, down, "down"),
    ] + ([] if squeeze_is_output else [helper.make_node("Relu", ["sq"], ["y"], name="relu")])
    inits = [const("w", rng.standard_normal((C, 8))), const("b", rng.standard_normal(C)),
             const("s", rng.uniform(0.5, 1.5, C)), const("bb", rng.standard_normal(C)),
             const("m", rng.standard_normal(C)), const("v", rng.uniform(0.5, 1.5, C))]
    if opset >= 13:
        inits += [numpy_helper.from_array(np.array(up, np.int64), "up"),
                  numpy_helper.from_array(np.array(down, np.int64), "down")]
    return make(nodes, {"x": ["N", 8]}, {"y": ["N", C]}, inits, opset=opset)


@pytest.mark.parametrize(("up", "down", "opset"), [([2], [2], 13), ([2, 3], [2, 3], 13), ([-1], [2], 13),
                                                   ([2], [2], 11)])
def test_unsqueezed_batchnorm_after_a_gemm_becomes_foldable(up, down, opset) -> None:
    model_proto = _model(up, down, opset)
    model = ir.from_proto(model_proto)
    result = UnsqueezedBatchNorm()(model)
    assert result.modified is True
    assert ops(model) == ["Gemm", "BatchNormalization", "Relu"]
    assert result.stats == {"rewritten": 1}
    assert set(model.graph.initializers) == {"w", "b", "s", "bb", "m", "v"}
    assert_same_outputs(model_proto, model, {"x": rand(4, 8)})
    assert FoldBatchNorm()(model).modified is True
    assert ops(model) == ["Gemm", "Relu"]
    assert_same_outputs(model_proto, model, {"x": rand(4, 8)}, atol=1e-4)


def test_a_squeeze_that_is_the_graph_output_keeps_the_output_name() -> None:
    model_proto = _model([2], [2], squeeze_is_output=True)
    model = ir.from_proto(model_proto)
    assert UnsqueezedBatchNorm()(model).modified is True
    assert ops(model) == ["Gemm", "BatchNormalization"]
    assert [o.name for o in model.graph.outputs] == ["y"]
    assert_same_outputs(model_proto, model, {"x": rand(4, 8)})


def test_an_unsqueeze_before_the_channels_is_kept() -> None:
    """(N, C) -> (N, 1, C): BatchNormalization then normalizes one channel of C values, a different function."""
    rng = np.random.default_rng(0)
    model_proto = make(
        [helper.make_node("Unsqueeze", ["x", "up"], ["u"], name="unsqueeze"),
         helper.make_node("BatchNormalization", ["u", "s", "bb", "m", "v"], ["n"], name="bn"),
         helper.make_node("Squeeze", ["n", "up"], ["y"], name="squeeze")],
        {"x": ["N", C]}, {"y": ["N", C]},
        [numpy_helper.from_array(np.array([1], np.int64), "up"), const("s", rng.uniform(0.5, 1.5, 1)),
         const("bb", [0.1]), const("m", [0.2]), const("v", [1.5])],
    )
    model = ir.from_proto(model_proto)
    assert UnsqueezedBatchNorm()(model).modified is False
    assert ops(model) == ["Unsqueeze", "BatchNormalization", "Squeeze"]
