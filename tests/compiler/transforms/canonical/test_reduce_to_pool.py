"""ReduceToPool: mean/max/sum over every spatial axis -> global pooling (+ Flatten for keepdims=0, a Mul for a sum);
every other reduction kept. ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import TensorProto, helper, numpy_helper

from accelc.transforms.canonical import ReduceToPool

# Opsets where the axes are an attribute / an input (ReduceSum moved to an input at 13, the others at 18).
ATTR_OPSET = {"ReduceMean": 13, "ReduceMax": 13, "ReduceSum": 11}
INPUT_OPSET = {"ReduceMean": 18, "ReduceMax": 18, "ReduceSum": 13}


def _axes(values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), "axes")


def _reduce(op: str, axes, keepdims: int, form: str, shape: list, out_shape: list, before=()) -> onnx.ModelProto:
    """x [-> the nodes before] -> op(axes, keepdims) -> y, with the axes as an attribute or a constant input."""
    src = "h" if before else "x"
    if form == "attr":
        node = helper.make_node(op, [src], ["y"], name="reduce", axes=axes, keepdims=keepdims)
        inits, opset = [], ATTR_OPSET[op]
    else:
        node = helper.make_node(op, [src, "axes"], ["y"], name="reduce", keepdims=keepdims)
        inits, opset = [_axes(axes)], INPUT_OPSET[op]
    nodes, more = (list(before[0]), list(before[1])) if before else ([], [])
    return make([*nodes, node], {"x": shape}, {"y": out_shape}, inits + more, opset=opset)


POOL = {"ReduceMean": ["GlobalAveragePool"], "ReduceMax": ["GlobalMaxPool"], "ReduceSum": ["GlobalAveragePool", "Mul"]}


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceSum"])
@pytest.mark.parametrize("keepdims", [1, 0])
@pytest.mark.parametrize("form", ["attr", "input"])
def test_reduction_over_the_spatial_axes_becomes_global_pooling(op: str, keepdims: int, form: str) -> None:
    out = ["N", 3, 1, 1] if keepdims else ["N", 3]
    model_proto = _reduce(op, [2, 3], keepdims, form, ["N", 3, 5, 4], out)
    model = ir.from_proto(model_proto)
    result = ReduceToPool()(model)
    assert result.modified is True
    assert result.stats == {"rewritten": {op: 1}}
    want = POOL[op] + ([] if keepdims else ["Flatten"])  # a sum's Mul on the pooled (N, C, 1, 1) tensor
    assert ops(model) == want
    last = list(model.graph)[-1]
    assert last.name == "reduce" and last.outputs[0] is model.graph.outputs[0]  # the output tensor keeps its node
    assert all(n.outputs[0].shape is not None for n in model.graph)  # new tensors have shapes (later passes read them)
    assert list(model.graph.initializers) == (["reduce_count"] if op == "ReduceSum" else [])  # axes dropped
    if op == "ReduceSum":
        assert float(model.graph.initializers["reduce_count"].const_value.numpy()) == 20.0
    assert_same_outputs(model_proto, model, {"x": rand(2, 3, 5, 4)}, atol=1e-4)


@pytest.mark.parametrize("axes", [[-2, -1], [3, 2]])
def test_negative_and_unordered_axes(axes: list[int]) -> None:
    model_proto = _reduce("ReduceMean", axes, 1, "attr", ["N", 3, 5, 4], ["N", 3, 1, 1])
    model = ir.from_proto(model_proto)
    assert ReduceToPool()(model).modified is True
    assert ops(model) == ["GlobalAveragePool"]
    assert_same_outputs(model_proto, model, {"x": rand(2, 3, 5, 4)})


@pytest.mark.parametrize("form", ["attr", "input"])
def test_mean_over_the_length_after_a_conv1d(form: str) -> None:
    """x.mean(2) after a Conv1d: rank 3, keepdims=0; the Conv's output shape is inferred by the pass."""
    conv = helper.make_node("Conv", ["x", "w"], ["h"], name="conv", pads=[1, 1])
    model_proto = _reduce("ReduceMean", [2], 0, form, ["N", 2, 16], ["N", 4],
                          before=([conv], [const("w", rand(4, 2, 3, seed=1))]))
    model = ir.from_proto(model_proto)
    result = ReduceToPool()(model)
    assert result.modified is True
    assert ops(model) == ["Conv", "GlobalAveragePool", "Flatten"]
    assert_same_outputs(model_proto, model, {"x": rand(3, 2, 16)})


@pytest.mark.parametrize(
    ("op", "axes", "shape", "why"),
    [
        ("ReduceMean", [1], [1, 3, 4, 4], "not exactly the spatial axes"),  # over the channels
        ("ReduceMean", [2], [1, 3, 4, 4], "not exactly the spatial axes"),  # a partial spatial set
        ("ReduceMax", [0, 2, 3], [2, 3, 4, 4], "not exactly the spatial axes"),  # the batch as well
        ("ReduceMean", [1], [2, 6], "not exactly the spatial axes"),  # rank 2: no spatial axes
        ("ReduceSum", [2, 3], ["N", 3, "H", "W"], "static spatial dims"),  # the count is unknown
    ],
)
def test_other_reductions_are_kept(op: str, axes: list[int], shape: list, why: str) -> None:
    kept = [d for i, d in enumerate(shape) if i not in axes]
    model_proto = _reduce(op, axes, 0, "attr", shape, kept)
    model = ir.from_proto(model_proto)
    result = ReduceToPool()(model)
    assert result.modified is False
    assert ops(model) == [op]
    assert result.stats == {"rewritten": {}}
    assert len(result.warnings) == 1 and "'reduce' kept" in result.warnings[0] and why in result.warnings[0]


def test_reduce_over_all_axes_and_computed_axes_are_kept() -> None:
    everything = make([helper.make_node("ReduceMean", ["x"], ["y"], name="reduce", keepdims=0)],
                      {"x": [1, 3, 4, 4]}, {"y": []})
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x", "a"], ["y"], name="reduce", keepdims=1)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4]),
         helper.make_tensor_value_info("a", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b", "c", "d"])])
    computed = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    for proto, why in ((everything, "every axis"), (computed, "not constant")):
        model = ir.from_proto(proto)
        result = ReduceToPool()(model)
        assert result.modified is False and ops(model) == ["ReduceMean"]
        assert why in result.warnings[0]


def test_other_reduce_ops_are_not_touched() -> None:
    model_proto = make([helper.make_node("ReduceProd", ["x"], ["y"], name="prod", axes=[2, 3], keepdims=1)],
                       {"x": [1, 3, 4, 4]}, {"y": [1, 3, 1, 1]})
    model = ir.from_proto(model_proto)
    result = ReduceToPool()(model)
    assert result.modified is False and ops(model) == ["ReduceProd"] and result.warnings == []
