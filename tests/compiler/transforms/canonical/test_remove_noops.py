"""RemoveNoOps: Identity and inference-mode Dropout disappear; ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, make, ops, rand
from onnx import helper, numpy_helper

from accelc.transforms.canonical import RemoveNoOps

DROPOUT_BUG = (
    "remove_noops.py: onnxscript's dropout_inference_rule/dropout_zero_rule match *attributes* "
    "(ratio=0.0 / training_mode=False), but from opset 12 ratio and training_mode are inputs, so "
    "no opset-13 Dropout is ever removed by this pass"
)


def test_identity_between_nodes_is_removed() -> None:
    model_proto = make(
        [
            helper.make_node("Relu", ["x"], ["a"], name="r1"),
            helper.make_node("Identity", ["a"], ["b"], name="id"),
            helper.make_node("Sigmoid", ["b"], ["y"], name="s"),
        ],
        {"x": ["N", 3]},
        {"y": ["N", 3]},
    )
    model = ir.from_proto(model_proto)
    result = RemoveNoOps()(model)
    assert result.modified is True
    assert ops(model) == ["Relu", "Sigmoid"]
    assert result.stats == {"removed": {"Dropout": 0, "Identity": 1}}
    assert_same_outputs(model_proto, model, {"x": rand(4, 3)})


def test_identity_producing_the_graph_output_keeps_the_output_name() -> None:
    model_proto = make(
        [helper.make_node("Relu", ["x"], ["a"], name="r"), helper.make_node("Identity", ["a"], ["y"])],
        {"x": ["N", 3]},
        {"y": ["N", 3]},
    )
    model = ir.from_proto(model_proto)
    result = RemoveNoOps()(model)
    assert result.modified is True
    assert ops(model) == ["Relu"]
    assert [o.name for o in model.graph.outputs] == ["y"]
    assert_same_outputs(model_proto, model, {"x": rand(4, 3)})


def test_model_without_noops_is_unmodified() -> None:
    model_proto = make([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": ["N", 3]}, {"y": ["N", 3]})
    model = ir.from_proto(model_proto)
    result = RemoveNoOps()(model)
    assert result.modified is False
    assert ops(model) == ["Relu"]
    assert_same_outputs(model_proto, model, {"x": rand(2, 3)})


def _dropout_model(form: str):
    inits = []
    inputs = ["a"]
    if form == "ratio":
        inits = [numpy_helper.from_array(np.array(0.5, np.float32), "ratio")]
        inputs = ["a", "ratio"]
    elif form == "training_mode_false":
        inits = [
            numpy_helper.from_array(np.array(0.5, np.float32), "ratio"),
            numpy_helper.from_array(np.array(False), "tm"),
        ]
        inputs = ["a", "ratio", "tm"]
    return make(
        [
            helper.make_node("Relu", ["x"], ["a"], name="r1"),
            helper.make_node("Dropout", inputs, ["b"], name="drop"),
            helper.make_node("Sigmoid", ["b"], ["y"], name="s"),
        ],
        {"x": ["N", 3]},
        {"y": ["N", 3]},
        inits,
    )


@pytest.mark.parametrize("form", ["plain", "ratio", "training_mode_false"])
def test_inference_dropout_is_removed(form: str) -> None:
    model_proto = _dropout_model(form)
    model = ir.from_proto(model_proto)
    result = RemoveNoOps()(model)
    assert ops(model) == ["Relu", "Sigmoid"]
    assert result.modified is True
    assert result.stats["removed"]["Dropout"] == 1
    assert_same_outputs(model_proto, model, {"x": rand(4, 3)})
