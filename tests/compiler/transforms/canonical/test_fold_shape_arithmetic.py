"""FoldShapeArithmetic: Shape -> Gather -> Unsqueeze -> Concat chains become constant Reshape targets where exact."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, make, ops, rand
from onnx import helper, numpy_helper

from accelc.transforms.canonical import FoldShapeArithmetic


def _ints(name: str, values) -> object:
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _size0_chain(axis: int = 0) -> list:
    """What the TorchScript exporter writes for `x.view(x.size(axis), -1)`."""
    return [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "i"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["t"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "t"], ["y"], name="reshape"),
    ], [_ints("i", axis), _ints("axes0", [0]), _ints("minus1", [-1])]


def _target(model: ir.Model) -> list[int]:
    reshape = next(n for n in model.graph if n.op_type == "Reshape")
    return reshape.inputs[1].const_value.numpy().tolist()


def test_view_by_the_batch_size_gets_a_batch_free_constant_target() -> None:
    nodes, inits = _size0_chain()
    model_proto = make(nodes, {"x": ["N", 4, 3, 3]}, {"y": ["N", 36]}, inits)
    model = ir.from_proto(model_proto)
    result = FoldShapeArithmetic()(model)
    assert result.modified is True
    assert ops(model) == ["Reshape"]
    assert _target(model) == [0, -1]  # 0: the batch, copied (allowzero=0)
    assert result.stats == {"folded": 0, "reshape_targets": 1}
    for batch in (1, 3):
        assert_same_outputs(model_proto, model, {"x": rand(batch, 4, 3, 3)})


@pytest.mark.parametrize("form", ["slice", "start"])
def test_static_shape_arithmetic_is_folded(form: str) -> None:
    """x.reshape(-1, *x.shape[1:]): Shape -> Slice(1:) at opset 13, Shape(start=1) at opset 15 (dynamo). All static,
    so the chain becomes one initializer."""
    if form == "slice":
        nodes = [helper.make_node("Shape", ["x"], ["s0"], name="shape"),
                 helper.make_node("Slice", ["s0", "one", "big"], ["s"], name="slice")]
    else:
        nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape", start=1)]
    model_proto = make(
        [
            *nodes,
            helper.make_node("Concat", ["minus1", "s"], ["t"], name="concat", axis=0),
            helper.make_node("Reshape", ["x", "t"], ["y"], name="reshape"),
        ],
        {"x": ["N", 4, 3]},
        {"y": ["N", 4, 3]},
        [_ints("minus1", [-1])] + ([_ints("one", [1]), _ints("big", [2**62])] if form == "slice" else []),
        opset=13 if form == "slice" else 15,
    )
    model = ir.from_proto(model_proto)
    result = FoldShapeArithmetic()(model)
    assert result.modified is True
    assert ops(model) == ["Reshape"]
    assert _target(model) == [-1, 4, 3]
    assert result.stats["folded"] == 2  # the per-sample dims, then the Concat of them
    assert list(model.graph.initializers) == [next(iter(model.graph)).inputs[1].name]  # the chain's inputs went
    assert_same_outputs(model_proto, model, {"x": rand(2, 4, 3)})


def test_reshape_to_another_tensors_shape_copies_the_shared_batch() -> None:
    """ONNX's conversion of an opset<13 LogSoftmax: Reshape(LogSoftmax(Flatten(x)), Shape(x))."""
    model_proto = make(
        [
            helper.make_node("Shape", ["x"], ["s"], name="shape"),
            helper.make_node("Flatten", ["x"], ["f"], name="flatten", axis=1),
            helper.make_node("LogSoftmax", ["f"], ["l"], name="lsm", axis=-1),
            helper.make_node("Reshape", ["l", "s"], ["y"], name="reshape"),
        ],
        {"x": ["N", 10]},
        {"y": ["N", 10]},
    )
    model = ir.from_proto(model_proto)
    result = FoldShapeArithmetic()(model)
    assert result.modified is True
    assert ops(model) == ["Flatten", "LogSoftmax", "Reshape"]
    assert _target(model) == [0, 10]
    assert_same_outputs(model_proto, model, {"x": rand(3, 10)})


def test_the_batch_elsewhere_in_the_target_becomes_minus_one() -> None:
    model_proto = make(
        [
            helper.make_node("Shape", ["x"], ["s"], name="shape"),
            helper.make_node("Gather", ["s", "i"], ["n"], name="gather", axis=0),
            helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq"),
            helper.make_node("Concat", ["two", "n1", "six"], ["t"], name="concat", axis=0),
            helper.make_node("Reshape", ["x", "t"], ["y"], name="reshape"),
        ],
        {"x": ["N", 3, 4]},
        {"y": [2, "N", 6]},
        [_ints("i", 0), _ints("axes0", [0]), _ints("two", [2]), _ints("six", [6])],
    )
    model = ir.from_proto(model_proto)
    result = FoldShapeArithmetic()(model)
    assert result.modified is True
    assert _target(model) == [2, -1, 6]
    for batch in (1, 4):
        assert_same_outputs(model_proto, model, {"x": rand(batch, 3, 4)})


@pytest.mark.parametrize("dims", [["N", "M"], ["N", 6]])
def test_a_target_that_stays_symbolic_is_left_alone(dims) -> None:
    """x.view(x.size(1), -1): with M free, no constant target computes it for every M (and with a static 6, the
    batch would be folded into the rows: left to the target's refusal)."""
    nodes, inits = _size0_chain(axis=1)
    model_proto = make(nodes, {"x": dims}, {"y": [dims[1], "K"]}, inits)
    model = ir.from_proto(model_proto)
    result = FoldShapeArithmetic()(model)
    if dims[1] == "M":
        assert result.modified is False
        assert ops(model) == ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape"]
    else:  # static: the dim is folded to [6, -1], which is what the graph computes
        assert _target(model) == [6, -1]
    assert_same_outputs(model_proto, model, {"x": rand(3, 6)})


def test_model_without_shape_ops_is_unmodified() -> None:
    model_proto = make([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": ["N", 3]}, {"y": ["N", 3]})
    model = ir.from_proto(model_proto)
    result = FoldShapeArithmetic()(model)
    assert result.modified is False
    assert ops(model) == ["Relu"]
