"""ReshapeToFlatten: per-sample flattening Reshapes become Flatten(axis=1), exactly for every batch size."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, make, ops, rand
from onnx import helper, numpy_helper

from accelc.transforms.canonical import ReshapeToFlatten


def _reshape_model(x_shape: list, target: list[int], y_shape: list, opset: int = 13, **attrs):
    return make(
        [helper.make_node("Relu", ["x"], ["a"], name="relu"),
         helper.make_node("Reshape", ["a", "t"], ["b"], name="reshape", **attrs),
         helper.make_node("Sigmoid", ["b"], ["y"], name="sig")],
        {"x": x_shape},
        {"y": y_shape},
        [numpy_helper.from_array(np.asarray(target, np.int64), "t")],
        opset=opset,
    )


@pytest.mark.parametrize("target", [[-1, 36], [0, -1], [0, 36]])
def test_per_sample_flattening_reshape_becomes_flatten(target: list[int]) -> None:
    """x.view(-1, k) with k the per-sample size (the seed LeNet's x.view(-1, 4*4*50)), Reshape to [0, -1]."""
    model_proto = _reshape_model(["N", 4, 3, 3], target, ["N", 36])
    model = ir.from_proto(model_proto)
    result = ReshapeToFlatten()(model)
    assert result.modified is True
    assert ops(model) == ["Relu", "Flatten", "Sigmoid"]
    flatten = list(model.graph)[1]
    assert flatten.attributes["axis"].value == 1 and len(flatten.inputs) == 1
    assert "t" not in model.graph.initializers
    assert result.stats == {"flatten": 1, "removed": 0, "batch_free": 0}
    for batch in (1, 5):
        assert_same_outputs(model_proto, model, {"x": rand(batch, 4, 3, 3)})


def test_a_reshape_that_mixes_samples_is_kept() -> None:
    """x.view(-1, 18) on 36 values per sample: two rows per sample, not a Flatten."""
    model_proto = _reshape_model(["N", 4, 3, 3], [-1, 18], ["M", 18])
    model = ir.from_proto(model_proto)
    result = ReshapeToFlatten()(model)
    assert result.modified is False
    assert ops(model) == ["Relu", "Reshape", "Sigmoid"]


def test_a_fixed_batch_flattening_reshape_becomes_flatten() -> None:
    model_proto = _reshape_model([1, 4, 3, 3], [1, 36], [1, 36])
    model = ir.from_proto(model_proto)
    assert ReshapeToFlatten()(model).modified is True
    assert ops(model) == ["Relu", "Flatten", "Sigmoid"]
    assert_same_outputs(model_proto, model, {"x": rand(1, 4, 3, 3)})


def test_other_per_sample_reshapes_get_a_batch_free_target() -> None:
    model_proto = _reshape_model(["N", 12], [-1, 3, 4], ["N", 3, 4])
    model = ir.from_proto(model_proto)
    result = ReshapeToFlatten()(model)
    assert result.modified is True
    assert result.stats == {"flatten": 0, "removed": 0, "batch_free": 1}
    reshape = list(model.graph)[1]
    assert reshape.inputs[1].const_value.numpy().tolist() == [0, 3, 4]
    assert_same_outputs(model_proto, model, {"x": rand(2, 12)})


def test_a_reshape_to_its_own_shape_is_removed() -> None:
    model_proto = _reshape_model(["N", 3, 4], [-1, 3, 4], ["N", 3, 4])
    model = ir.from_proto(model_proto)
    result = ReshapeToFlatten()(model)
    assert result.modified is True
    assert ops(model) == ["Relu", "Sigmoid"]
    assert result.stats == {"flatten": 0, "removed": 1, "batch_free": 0}
    assert_same_outputs(model_proto, model, {"x": rand(2, 3, 4)})


def test_a_removed_reshape_that_is_the_graph_output_keeps_the_output_name() -> None:
    model_proto = make(
        [helper.make_node("Relu", ["x"], ["a"], name="relu"),
         helper.make_node("Reshape", ["a", "t"], ["y"], name="reshape")],
        {"x": ["N", 10]}, {"y": ["N", 10]}, [numpy_helper.from_array(np.array([0, 10], np.int64), "t")],
    )
    model = ir.from_proto(model_proto)
    assert ReshapeToFlatten()(model).modified is True
    assert ops(model) == ["Relu"]
    assert [o.name for o in model.graph.outputs] == ["y"]
    assert_same_outputs(model_proto, model, {"x": rand(3, 10)})


def test_flatten_of_a_rank_2_tensor_is_removed() -> None:
    model_proto = make(
        [helper.make_node("Flatten", ["x"], ["f"], name="flatten", axis=1),
         helper.make_node("LogSoftmax", ["f"], ["y"], name="lsm", axis=-1)],
        {"x": ["N", 10]}, {"y": ["N", 10]},
    )
    model = ir.from_proto(model_proto)
    assert ReshapeToFlatten()(model).modified is True
    assert ops(model) == ["LogSoftmax"]
    assert_same_outputs(model_proto, model, {"x": rand(3, 10)})


@pytest.mark.parametrize("batch", [1, "N"])
def test_flatten_axis_0_becomes_axis_1_on_a_batch_of_one_only(batch) -> None:
    """Batch-1 exports write Flatten(axis=0); with a free batch it would mix samples."""
    model_proto = make(
        [helper.make_node("Flatten", ["x"], ["y"], name="flatten", axis=0)],
        {"x": [batch, 2, 3]}, {"y": [1, "K"]},
    )
    model = ir.from_proto(model_proto)
    result = ReshapeToFlatten()(model)
    flatten = next(iter(model.graph))
    assert result.modified is (batch == 1)
    assert flatten.attributes["axis"].value == (1 if batch == 1 else 0)
    assert_same_outputs(model_proto, model, {"x": rand(1, 2, 3)})


def test_the_dynamo_exporters_allowzero_reshape_becomes_flatten() -> None:
    """torch.export + dynamo writes Reshape(x, [-1, k], allowzero=1): with no 0 in the target, the same Flatten."""
    model_proto = _reshape_model(["N", 4, 3, 3], [-1, 36], ["N", 36], opset=14, allowzero=1)
    model = ir.from_proto(model_proto)
    assert ReshapeToFlatten()(model).modified is True
    assert ops(model) == ["Relu", "Flatten", "Sigmoid"]
    assert "allowzero" not in list(model.graph)[1].attributes
    assert_same_outputs(model_proto, model, {"x": rand(3, 4, 3, 3)})


def test_unknown_per_sample_dims_leave_the_reshape_alone() -> None:
    model_proto = _reshape_model(["N", "C", 3], [0, -1], ["N", "K"])
    model = ir.from_proto(model_proto)
    assert ReshapeToFlatten()(model).modified is False
    assert ops(model) == ["Relu", "Reshape", "Sigmoid"]
