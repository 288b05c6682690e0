"""FoldChannelAffine: per-channel Sub/Mul/Add/Div after a Conv or Gemm folded into its weights and bias (Keras's
decomposed BatchNorm); other forms left. ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper, numpy_helper

from accelc.transforms.canonical import FoldChannelAffine

N = helper.make_node


def test_a_decomposed_batchnorm_after_a_conv_folds_into_it() -> None:
    proto = make(
        [N("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]), N("Sub", ["c", "mean"], ["s"], name="sub"),
         N("Mul", ["s", "scale"], ["m"], name="mul"), N("Add", ["beta", "m"], ["a"], name="add"),
         N("Div", ["a", "k"], ["d"], name="div"), N("Relu", ["d"], ["y"], name="relu")],
        {"x": ["N", 3, 5, 5]}, {"y": ["N", 4, 5, 5]},
        [const("w", rand(4, 3, 3, 3)), const("mean", rand(1, 4, 1, 1, seed=1)), const("scale", rand(4, 1, 1, seed=2)),
         const("beta", rand(1, 4, 1, 1, seed=3)), numpy_helper.from_array(np.array(2.0, np.float32), "k")],
    )  # fmt: skip
    model = ir.from_proto(proto)
    result = FoldChannelAffine()(model)
    assert result.modified is True
    assert result.stats == {"folded": {"Sub": 1, "Mul": 1, "Add": 1, "Div": 1}}
    assert ops(model) == ["Conv", "Relu"]
    assert next(iter(model.graph)).name == "conv"
    assert_same_outputs(proto, model, {"x": rand(2, 3, 5, 5)}, atol=1e-4)


def test_a_per_feature_scale_and_shift_after_a_gemm() -> None:
    proto = make(
        [N("Gemm", ["x", "w", "b"], ["g"], name="fc", transB=1, beta=0.5), N("Mul", ["g", "s"], ["m"], name="mul"),
         N("Add", ["m", "t"], ["y"], name="add")],
        {"x": ["N", 6]}, {"y": ["N", 4]},
        [const("w", rand(4, 6)), const("b", rand(4, seed=1)), const("s", rand(4, seed=2)),
         const("t", rand(1, 4, seed=3))],
    )  # fmt: skip
    model = ir.from_proto(proto)
    assert FoldChannelAffine()(model).modified is True
    assert ops(model) == ["Gemm"] and [v.name for v in model.graph.outputs] == ["y"]
    assert_same_outputs(proto, model, {"x": rand(3, 6)}, atol=1e-5)


@pytest.mark.parametrize(
    ("node", "const_shape"),
    [(N("Sub", ["k", "c"], ["y"], name="op"), (4, 1, 1)),  # k - conv: not a bias
     (N("Div", ["k", "c"], ["y"], name="op"), (4, 1, 1)),  # k / conv: not linear
     (N("Add", ["c", "k"], ["y"], name="op"), (4, 5, 5)),  # varies over the spatial axes
     (N("Mul", ["c", "k"], ["y"], name="op"), (1, 5, 1))],
)  # fmt: skip
def test_other_forms_are_left(node, const_shape) -> None:
    proto = make([N("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]), node], {"x": ["N", 3, 5, 5]},
                 {"y": ["N", 4, 5, 5]}, [const("w", rand(4, 3, 3, 3)), const("k", rand(*const_shape, seed=1) + 3)])
    model = ir.from_proto(proto)
    assert FoldChannelAffine()(model).modified is False
    assert ops(model) == ["Conv", node.op_type]


def test_a_conv_read_twice_is_left() -> None:
    proto = make([N("Conv", ["x", "w"], ["c"], name="conv"), N("Add", ["c", "b"], ["a"], name="add"),
                  N("Mul", ["c", "a"], ["y"], name="mul")],
                 {"x": ["N", 3, 5, 5]}, {"y": ["N", 4, 5, 5]},
                 [const("w", rand(4, 3, 1, 1)), const("b", rand(4, 1, 1))])
    model = ir.from_proto(proto)
    assert FoldChannelAffine()(model).modified is False
