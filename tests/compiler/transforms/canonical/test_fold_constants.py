"""FoldConstants: constant subgraphs become initializers, dead nodes go, Flatten stays a Flatten."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import TensorProto, helper

from accelc.transforms.canonical import FoldConstants


def test_constant_subgraph_is_folded() -> None:
    rng = np.random.default_rng(0)
    model_proto = make(
        [
            helper.make_node("Mul", ["c1", "c2"], ["c3"], name="const_mul"),
            helper.make_node(
                "Constant",
                [],
                ["k"],
                name="const_node",
                value=helper.make_tensor("k", TensorProto.FLOAT, [3], [0.5, -1.0, 2.0]),
            ),
            helper.make_node("Add", ["c3", "k"], ["c4"], name="const_add"),
            helper.make_node("Add", ["x", "c4"], ["y"], name="add"),
        ],
        {"x": ["N", 3]},
        {"y": ["N", 3]},
        [const("c1", rng.standard_normal(3)), const("c2", rng.standard_normal(3))],
    )
    model = ir.from_proto(model_proto)
    result = FoldConstants()(model)
    assert result.modified is True
    assert ops(model) == ["Add"]
    assert result.stats == {"nodes_before": 4, "nodes_after": 1}
    (add,) = list(model.graph)
    assert add.inputs[1].const_value is not None  # the folded constant is an initializer-backed value
    assert_same_outputs(model_proto, model, {"x": rand(5, 3)})


def test_dead_nodes_are_removed() -> None:
    model_proto = make(
        [
            helper.make_node("Relu", ["x"], ["y"], name="used"),
            helper.make_node("Sigmoid", ["x"], ["dead"], name="dead"),
        ],
        {"x": ["N", 3]},
        {"y": ["N", 3]},
    )
    model = ir.from_proto(model_proto)
    result = FoldConstants()(model)
    assert result.modified is True
    assert ops(model) == ["Relu"]
    assert_same_outputs(model_proto, model, {"x": rand(2, 3)})


def test_nothing_to_fold_is_unmodified() -> None:
    rng = np.random.default_rng(1)
    model_proto = make(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
            helper.make_node("Relu", ["h"], ["y"], name="relu"),
        ],
        {"x": ["N", 4]},
        {"y": ["N", 2]},
        [const("w", rng.standard_normal((4, 2)))],
    )
    model = ir.from_proto(model_proto)
    result = FoldConstants()(model)
    assert result.modified is False
    assert ops(model) == ["MatMul", "Relu"]
    assert_same_outputs(model_proto, model, {"x": rand(2, 4)})


def test_flatten_stays_a_flatten() -> None:
    """Regression: onnxscript's optimize() turns Flatten into Reshape; channels-last lowering needs it."""
    rng = np.random.default_rng(2)
    model_proto = make(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
            helper.make_node("Flatten", ["c"], ["f"], name="flatten", axis=1),
            helper.make_node("MatMul", ["f", "w2"], ["y"], name="mm"),
        ],
        {"x": ["N", 1, 4, 4]},
        {"y": ["N", 2]},
        [const("w", rng.standard_normal((2, 1, 3, 3))), const("w2", rng.standard_normal((8, 2)))],
    )
    model = ir.from_proto(model_proto)
    FoldConstants()(model)
    assert ops(model) == ["Conv", "Flatten", "MatMul"]
    assert_same_outputs(model_proto, model, {"x": rand(2, 1, 4, 4)})
