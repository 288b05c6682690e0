"""SinkTransposes: Transposes move below the ops that commute with them, pairs cancel, axes are renumbered;
Transposes before a Conv, a Shape or a graph output stay. ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper, numpy_helper

from accelc.transforms.canonical import SinkTransposes

N = helper.make_node
NHWC, NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def _sink(proto, feeds, modified=True):
    model = ir.from_proto(proto)
    result = SinkTransposes()(model)
    assert result.modified is modified
    assert_same_outputs(proto, model, feeds)
    return model, result


def test_a_pair_around_bias_and_relu_cancels() -> None:
    """Keras between two Convs: NCHW -> NHWC, + bias (per channel, NHWC), Relu, -> NCHW."""
    proto = make(
        [N("Transpose", ["x"], ["t"], name="to_nhwc", perm=NHWC), N("Add", ["t", "b"], ["a"], name="bias"),
         N("Mul", ["a", "s"], ["m"], name="scale"), N("Relu", ["m"], ["r"], name="relu"),
         N("Transpose", ["r"], ["y"], name="to_nchw", perm=NCHW)],
        {"x": ["N", 4, 5, 6]}, {"y": ["N", 4, 5, 6]},
        [const("b", rand(4, seed=1)), const("s", rand(1, 1, 1, 4, seed=2))],
    )  # fmt: skip
    model, result = _sink(proto, {"x": rand(2, 4, 5, 6)})
    assert ops(model) == ["Add", "Mul", "Relu"]
    assert result.stats["transposes_before"] == 2 and result.stats["transposes_after"] == 0
    assert model.graph.outputs[0].name == "y"
    assert not [n for n in model.graph.initializers if n in ("b", "s")]  # replaced by their transposed copies


def test_two_transposed_operands_and_a_scalar() -> None:
    proto = make(
        [N("Transpose", ["x"], ["t1"], name="t1", perm=NHWC), N("Transpose", ["z"], ["t2"], name="t2", perm=NHWC),
         N("Add", ["t1", "t2"], ["a"], name="add"), N("Mul", ["a", "k"], ["m"], name="mul"),
         N("Transpose", ["m"], ["y"], name="back", perm=NCHW)],
        {"x": ["N", 3, 2, 4], "z": ["N", 3, 2, 4]}, {"y": ["N", 3, 2, 4]},
        [numpy_helper.from_array(np.array(0.5, np.float32), "k")],
    )  # fmt: skip
    model, _ = _sink(proto, {"x": rand(2, 3, 2, 4), "z": rand(2, 3, 2, 4, seed=1)})
    assert ops(model) == ["Add", "Mul"]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_axis_is_renumbered(op: str) -> None:
    proto = make(
        [N("Transpose", ["x"], ["t"], name="t", perm=NHWC), N(op, ["t"], ["s"], name="sm", axis=-1),
         N("Transpose", ["s"], ["y"], name="back", perm=NCHW)],
        {"x": ["N", 4, 3, 3]}, {"y": ["N", 4, 3, 3]},
    )  # fmt: skip
    model, _ = _sink(proto, {"x": rand(2, 4, 3, 3)})
    assert ops(model) == [op]
    assert next(iter(model.graph)).attributes["axis"].value == 1


def test_concat_axis_is_renumbered() -> None:
    proto = make(
        [N("Transpose", ["x"], ["t1"], name="t1", perm=NHWC), N("Transpose", ["z"], ["t2"], name="t2", perm=NHWC),
         N("Concat", ["t1", "t2"], ["c"], name="cat", axis=3), N("Transpose", ["c"], ["y"], name="back", perm=NCHW)],
        {"x": ["N", 2, 3, 3], "z": ["N", 5, 3, 3]}, {"y": ["N", 7, 3, 3]},
    )  # fmt: skip
    model, _ = _sink(proto, {"x": rand(2, 2, 3, 3), "z": rand(2, 5, 3, 3, seed=1)})
    assert ops(model) == ["Concat"]
    assert next(iter(model.graph)).attributes["axis"].value == 1


@pytest.mark.parametrize("opset", [13, 18])
def test_global_average_over_h_and_w_leaves_no_transpose(opset: int) -> None:
    """Keras's GlobalAveragePooling2D: ReduceMean over NHWC axes 1, 2 (keepdims=0) -> axes 2, 3 of the NCHW map."""
    if opset >= 18:
        node, inits = N("ReduceMean", ["t", "axes"], ["y"], name="gap", keepdims=0), [
            numpy_helper.from_array(np.array([1, 2], np.int64), "axes")]
    else:
        node, inits = N("ReduceMean", ["t"], ["y"], name="gap", axes=[1, 2], keepdims=0), []
    proto = make([N("Transpose", ["x"], ["t"], name="t", perm=NHWC), node], {"x": ["N", 6, 4, 5]}, {"y": ["N", 6]},
                 inits, opset=opset)
    model, _ = _sink(proto, {"x": rand(2, 6, 4, 5)})
    assert ops(model) == ["ReduceMean"]
    gap = next(iter(model.graph))
    axes = gap.attributes["axes"].value if opset < 18 else gap.inputs[1].const_value.numpy()
    assert list(axes) == [2, 3]


@pytest.mark.parametrize("keepdims", [0, 1])
def test_a_reduction_keeping_permuted_axes_leaves_the_transpose_below(keepdims: int) -> None:
    out = ["N", 1, 5, 6] if keepdims else ["N", 5, 6]
    proto = make([N("Transpose", ["x"], ["t"], name="t", perm=NHWC),
                  N("ReduceMax", ["t"], ["y"], name="rmax", axes=[1], keepdims=keepdims)],
                 {"x": ["N", 6, 4, 5]}, {"y": out})  # fmt: skip
    model, _ = _sink(proto, {"x": rand(2, 6, 4, 5)})
    assert ops(model) == ["ReduceMax", "Transpose"]
    assert list(next(iter(model.graph)).attributes["axes"].value) == [2]


def test_composed_and_identity_transposes_disappear() -> None:
    proto = make(
        [N("Transpose", ["x"], ["a"], name="a", perm=[0, 2, 1, 3]),
         N("Transpose", ["a"], ["b"], name="b", perm=[0, 2, 1, 3]), N("Relu", ["b"], ["y"], name="relu")],
        {"x": ["N", 2, 3, 4]}, {"y": ["N", 2, 3, 4]},
    )  # fmt: skip
    model, _ = _sink(proto, {"x": rand(2, 2, 3, 4)})
    assert ops(model) == ["Relu"]


@pytest.mark.parametrize(
    ("readers", "out"),
    [([N("Conv", ["t", "w"], ["y"], name="conv")], ["N", 2, 3, 2]),
     ([N("Shape", ["t"], ["s"], name="shape"), N("Cast", ["s"], ["y"], name="cast", to=1)], [4]),
     ([N("Flatten", ["t"], ["y"], name="flatten")], ["N", 12])],
)  # fmt: skip
def test_transposes_stay_before_ops_that_care_about_axis_order(readers, out) -> None:
    proto = make([N("Transpose", ["x"], ["t"], name="t", perm=NCHW), *readers], {"x": ["N", 3, 2, 2]}, {"y": out},
                 [const("w", rand(2, 2, 1, 1))])
    model, _ = _sink(proto, {"x": rand(2, 3, 2, 2)}, modified=False)
    assert ops(model) == ["Transpose", *(r.op_type for r in readers)]


def test_a_transpose_that_is_a_graph_output_stays() -> None:
    proto = make([N("Relu", ["x"], ["r"], name="relu"), N("Transpose", ["r"], ["y"], name="t", perm=NHWC)],
                 {"x": ["N", 2, 3, 4]}, {"y": ["N", 3, 4, 2]})
    model, _ = _sink(proto, {"x": rand(2, 2, 3, 4)}, modified=False)
    assert ops(model) == ["Relu", "Transpose"]


def test_moved_below_a_graph_output_producer_the_output_keeps_its_name() -> None:
    proto = make([N("Transpose", ["x"], ["t"], name="t", perm=NHWC), N("Relu", ["t"], ["y"], name="relu")],
                 {"x": ["N", 2, 3, 4]}, {"y": ["N", 3, 4, 2]})
    model, _ = _sink(proto, {"x": rand(2, 2, 3, 4)})
    assert ops(model) == ["Relu", "Transpose"]
    assert [v.name for v in model.graph.outputs] == ["y"]
