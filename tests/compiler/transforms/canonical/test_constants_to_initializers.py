"""ConstantsToInitializers: Constant and constant-shape ConstantOfShape nodes become initializers; ORT agrees."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from _transform_models import assert_same_outputs, make, ops, rand
from onnx import TensorProto, helper, numpy_helper

from accelc.transforms.canonical import ConstantsToInitializers


def _constant(name: str, **value) -> object:
    return helper.make_node("Constant", [], [name], name=f"const_{name}", **value)


def test_clip_bounds_written_as_constants_become_initializers() -> None:
    """torch's ReLU6/Hardtanh/clamp: Clip(x, Constant(0), Constant(6))."""
    model_proto = make(
        [
            _constant("lo", value=numpy_helper.from_array(np.array(0.0, np.float32))),
            _constant("hi", value=numpy_helper.from_array(np.array(6.0, np.float32))),
            helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="relu6"),
        ],
        {"x": ["N", 8]},
        {"y": ["N", 8]},
    )
    model = ir.from_proto(model_proto)
    result = ConstantsToInitializers()(model)
    assert result.modified is True
    assert ops(model) == ["Clip"]
    assert result.stats == {"constants": 2, "constant_of_shape": 0}
    clip = next(iter(model.graph))
    assert [float(v.const_value.numpy()) for v in clip.inputs[1:]] == [0.0, 6.0]
    assert {"lo", "hi"} <= set(model.graph.initializers)  # the outputs' names are kept
    assert_same_outputs(model_proto, model, {"x": rand(5, 8) * 10})


def test_every_attribute_form_is_lifted() -> None:
    """value_float (x / 255) and value_ints (the Unsqueeze axes ONNX's version converter writes)."""
    model_proto = make(
        [
            _constant("d", value_float=255.0),
            helper.make_node("Div", ["x", "d"], ["a"], name="scale"),
            _constant("axes", value_ints=[1]),
            helper.make_node("Unsqueeze", ["a", "axes"], ["y"], name="unsq"),
        ],
        {"x": ["N", 4]},
        {"y": ["N", 1, 4]},
    )
    model = ir.from_proto(model_proto)
    result = ConstantsToInitializers()(model)
    assert result.modified is True
    assert ops(model) == ["Div", "Unsqueeze"]
    assert model.graph.initializers["axes"].const_value.numpy().tolist() == [1]
    assert_same_outputs(model_proto, model, {"x": rand(3, 4) * 255})


def test_constant_of_shape_with_a_constant_shape_is_filled() -> None:
    shape = numpy_helper.from_array(np.array([1, 4], np.int64), "shape")
    fill = numpy_helper.from_array(np.array([0.5], np.float32))
    model_proto = make(
        [
            helper.make_node("ConstantOfShape", ["shape"], ["half"], name="cos", value=fill),
            helper.make_node("Add", ["x", "half"], ["y"], name="add"),
        ],
        {"x": ["N", 4]},
        {"y": ["N", 4]},
        [shape],
    )
    model = ir.from_proto(model_proto)
    result = ConstantsToInitializers()(model)
    assert result.modified is True
    assert ops(model) == ["Add"]
    assert result.stats == {"constants": 0, "constant_of_shape": 1}
    assert set(model.graph.initializers) == {"half"}  # the shape initializer went with its only reader
    np.testing.assert_array_equal(model.graph.initializers["half"].const_value.numpy(), np.full((1, 4), 0.5))
    assert_same_outputs(model_proto, model, {"x": rand(3, 4)})


def test_constant_of_shape_with_a_computed_shape_is_kept_and_said() -> None:
    model_proto = make(
        [
            helper.make_node("Shape", ["x"], ["s"], name="shape"),
            helper.make_node("ConstantOfShape", ["s"], ["z"], name="cos",
                             value=numpy_helper.from_array(np.array([1.0], np.float32))),
            helper.make_node("Add", ["x", "z"], ["y"], name="add"),
        ],
        {"x": ["N", 4]},
        {"y": ["N", 4]},
    )
    model = ir.from_proto(model_proto)
    result = ConstantsToInitializers()(model)
    assert result.modified is False
    assert ops(model) == ["Shape", "ConstantOfShape", "Add"]
    assert result.warnings == ["1 ConstantOfShape node(s) with a computed shape were kept"]


def test_a_constant_that_is_a_graph_output_stays_a_node() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="r"),
         _constant("k", value=numpy_helper.from_array(np.array([1.0, 2.0], np.float32)))],
        "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("k", TensorProto.FLOAT, [2])],
    )
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model = ir.from_proto(model_proto)
    result = ConstantsToInitializers()(model)
    assert result.modified is False
    assert ops(model) == ["Relu", "Constant"]
    assert_same_outputs(model_proto, model, {"x": rand(2, 2)})


def test_model_without_constant_nodes_is_unmodified() -> None:
    model_proto = make([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": ["N", 3]}, {"y": ["N", 3]})
    model = ir.from_proto(model_proto)
    result = ConstantsToInitializers()(model)
    assert result.modified is False
    assert result.warnings == []
    assert_same_outputs(model_proto, model, {"x": rand(2, 3)})
