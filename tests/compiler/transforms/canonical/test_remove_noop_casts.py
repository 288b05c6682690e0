"""RemoveNoOpCasts: Casts that change nothing go, Casts that round stay; ORT agrees before/after."""

from __future__ import annotations

import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, make, ops, rand
from onnx import TensorProto, helper

from accelc.transforms.canonical import RemoveNoOpCasts


def _chain(*casts: int) -> list:
    """Relu -> Cast(to=casts[0]) -> ... -> Sigmoid, all on a float tensor."""
    nodes, prev = [helper.make_node("Relu", ["x"], ["a"], name="relu")], "a"
    for i, to in enumerate(casts):
        nodes.append(helper.make_node("Cast", [prev], [f"c{i}"], name=f"cast{i}", to=to))
        prev = f"c{i}"
    return [*nodes, helper.make_node("Sigmoid", [prev], ["y"], name="sig")]


def test_cast_to_the_type_the_tensor_has_is_removed() -> None:
    model_proto = make(_chain(TensorProto.FLOAT), {"x": ["N", 4]}, {"y": ["N", 4]})
    model = ir.from_proto(model_proto)
    result = RemoveNoOpCasts()(model)
    assert result.modified is True
    assert ops(model) == ["Relu", "Sigmoid"]
    assert result.stats == {"removed": 1, "round_trips": 0}
    assert_same_outputs(model_proto, model, {"x": rand(3, 4)})


def test_an_exact_round_trip_through_double_is_removed() -> None:
    model_proto = make(_chain(TensorProto.DOUBLE, TensorProto.FLOAT), {"x": ["N", 4]}, {"y": ["N", 4]})
    model = ir.from_proto(model_proto)
    result = RemoveNoOpCasts()(model)
    assert result.modified is True
    assert ops(model) == ["Relu", "Sigmoid"]
    assert result.stats == {"removed": 2, "round_trips": 1}
    assert_same_outputs(model_proto, model, {"x": rand(3, 4)}, atol=0)


@pytest.mark.parametrize("casts", [(TensorProto.FLOAT16, TensorProto.FLOAT), (TensorProto.INT32, TensorProto.FLOAT)])
def test_a_round_trip_that_rounds_is_kept(casts) -> None:
    model_proto = make(_chain(*casts), {"x": ["N", 4]}, {"y": ["N", 4]})
    model = ir.from_proto(model_proto)
    result = RemoveNoOpCasts()(model)
    assert result.modified is False
    assert ops(model) == ["Relu", "Cast", "Cast", "Sigmoid"]
    assert_same_outputs(model_proto, model, {"x": rand(3, 4) * 100})


def test_cast_like_between_tensors_of_one_type_is_removed() -> None:
    model_proto = make(
        [helper.make_node("Relu", ["x"], ["a"], name="relu"),
         helper.make_node("CastLike", ["a", "x"], ["b"], name="castlike"),
         helper.make_node("Sigmoid", ["b"], ["y"], name="sig")],
        {"x": ["N", 4]}, {"y": ["N", 4]}, opset=15,
    )
    model = ir.from_proto(model_proto)
    assert RemoveNoOpCasts()(model).modified is True
    assert ops(model) == ["Relu", "Sigmoid"]
    assert_same_outputs(model_proto, model, {"x": rand(3, 4)})


def test_a_cast_producing_the_graph_output_keeps_the_output_name() -> None:
    model_proto = make(
        [helper.make_node("Relu", ["x"], ["a"], name="relu"),
         helper.make_node("Cast", ["a"], ["y"], name="cast", to=TensorProto.FLOAT)],
        {"x": ["N", 4]}, {"y": ["N", 4]},
    )
    model = ir.from_proto(model_proto)
    assert RemoveNoOpCasts()(model).modified is True
    assert ops(model) == ["Relu"]
    assert [o.name for o in model.graph.outputs] == ["y"]
    assert_same_outputs(model_proto, model, {"x": rand(3, 4)})


def test_model_without_casts_is_unmodified() -> None:
    model_proto = make([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": ["N", 3]}, {"y": ["N", 3]})
    model = ir.from_proto(model_proto)
    result = RemoveNoOpCasts()(model)
    assert result.modified is False
    assert ops(model) == ["Relu"]
