"""TransposeQuantizedWeight: Transpose(DequantizeLinear([Clip]([QuantizeLinear](W)))) becomes the same chain on W^T
(per-tensor, or per-axis with the axis moved); chains something else reads, computed tensors and overridable
constants are left. ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper, numpy_helper

from accelc.transforms.canonical import TransposeQuantizedWeight

N = helper.make_node


def _ints(name: str, array, dtype=np.int8):
    return numpy_helper.from_array(np.asarray(array, dtype=dtype), name)


def _chain(form: str, w_shape: tuple[int, ...], scale, axis: int | None = None) -> tuple[list, list]:
    """Nodes computing 'wq' (the dequantized weight) in one of the forms (w -> [q ->] [clip ->] dq; the tensors
    between them 'wi', 'wc'), and their initializers."""
    kw = {} if axis is None else {"axis": axis}
    inits = [const("s", scale), _ints("z", np.zeros(np.shape(scale))), _ints("lo", -3), _ints("hi", 3)]
    nodes, x = [], "w"
    if form.startswith("q_"):
        inits.append(const("w", rand(*w_shape, seed=1)))
        nodes.append(N("QuantizeLinear", ["w", "s", "z"], ["wi"], name="q", **kw))
        x = "wi"
    else:  # an integer constant
        inits.append(_ints("w", np.random.default_rng(1).integers(-3, 4, w_shape)))
    if "clip" in form:
        nodes.append(N("Clip", [x, "lo", "hi"], ["wc"], name="clip"))
        x = "wc"
    nodes.append(N("DequantizeLinear", [x, "s", "z"], ["wq"], name="dq", **kw))
    return nodes, inits


def _dense(form: str, scale=0.05, axis: int | None = None, extra: list | None = None, outputs=None):
    nodes, inits = _chain(form, (5, 7), scale, axis)
    nodes += [N("Transpose", ["wq"], ["wt"], name="t", perm=[1, 0]), N("MatMul", ["x", "wt"], ["y"], name="fc")]
    return make(nodes + (extra or []), {"x": ["N", 7]}, outputs or {"y": ["N", 5]}, inits)


@pytest.mark.parametrize("form", ["q_clip_dq", "q_dq", "int_dq", "int_clip_dq"])
def test_the_transpose_moves_into_the_constant(form: str) -> None:
    proto = _dense(form)
    model = ir.from_proto(proto)
    result = TransposeQuantizedWeight()(model)
    assert result.modified is True and result.stats == {"rewritten": 1, "transposes": ["t"]}
    assert "Transpose" not in ops(model) and ops(model)[-1] == "MatMul"
    dq = next(n for n in model.graph if n.op_type == "DequantizeLinear")
    assert dq.name == "dq" and dq.outputs[0].name == "wt"  # names kept: the MatMul still reads 'wt'
    assert [n.name for n in model.graph] == [n.name for n in proto.graph.node if n.op_type != "Transpose"]
    w = ir.convenience.get_const_tensor(model.graph.node(0).inputs[0]).numpy()
    original = numpy_helper.to_array(next(i for i in proto.graph.initializer if i.name == "w"))
    np.testing.assert_array_equal(w, original.T)
    assert w.dtype == original.dtype and "w" not in model.graph.initializers  # the old constant is dropped
    assert_same_outputs(proto, model, {"x": rand(3, 7, seed=2)}, atol=0)


@pytest.mark.parametrize("form", ["q_clip_dq", "int_dq"])
def test_per_axis_scales_move_with_their_axis(form: str) -> None:
    scale = np.linspace(0.02, 0.2, 5).astype(np.float32)  # one per output row of W (5, 7): axis 0
    proto = _dense(form, scale=scale, axis=0)
    model = ir.from_proto(proto)
    assert TransposeQuantizedWeight()(model).modified is True
    assert {n.name: n.attributes["axis"].value for n in model.graph if "axis" in n.attributes} == (
        {"q": 1, "dq": 1} if form == "q_clip_dq" else {"dq": 1})
    assert_same_outputs(proto, model, {"x": rand(3, 7, seed=2)}, atol=0)


def test_a_negative_axis_under_a_rank_3_permutation() -> None:
    """perm (2, 0, 1) moves input axis 0 (axis=-3) to output axis 1; the result is read by an Add."""
    nodes, inits = _chain("q_clip_dq", (4, 2, 3), np.array([0.1, 0.2, 0.3, 0.4], np.float32), axis=-3)
    nodes += [N("Transpose", ["wq"], ["wt"], name="t", perm=[2, 0, 1]), N("Add", ["x", "wt"], ["y"], name="add")]
    proto = make(nodes, {"x": [3, 4, 2]}, {"y": [3, 4, 2]}, inits)
    model = ir.from_proto(proto)
    assert TransposeQuantizedWeight()(model).modified is True
    assert [n.attributes["axis"].value for n in model.graph if "axis" in n.attributes] == [1, 1]
    assert_same_outputs(proto, model, {"x": rand(3, 4, 2, seed=2)}, atol=0)


def test_a_transpose_without_perm_reverses_the_axes_and_may_be_an_output() -> None:
    nodes, inits = _chain("q_clip_dq", (2, 3, 4), 0.1)
    proto = make([*nodes, N("Transpose", ["wq"], ["wt"], name="t"), N("Relu", ["x"], ["r"], name="relu")],
                 {"x": [2]}, {"r": [2], "wt": [4, 3, 2]}, inits)
    model = ir.from_proto(proto)
    assert TransposeQuantizedWeight()(model).modified is True
    assert model.graph.outputs[1].name == "wt" and model.graph.outputs[1].producer().name == "dq"
    assert_same_outputs(proto, model, {"x": rand(2)}, atol=0)


@pytest.mark.parametrize("reader", ["wq", "wc", "wi"])
def test_a_chain_with_a_second_reader_is_left(reader: str) -> None:
    """The untransposed tensor is still needed (here by a ReduceSum), so nothing moves."""
    extra = [N("Cast", [reader], ["wf"], to=1, name="cast"), N("ReduceSum", ["wf"], ["other"], name="sum", keepdims=0)]
    proto = _dense("q_clip_dq", extra=extra, outputs={"y": ["N", 5], "other": []})
    model = ir.from_proto(proto)
    result = TransposeQuantizedWeight()(model)
    assert result.modified is False and result.stats["rewritten"] == 0
    assert "another reader" in result.stats["declined"]["t"]
    assert ops(model) == [n.op_type for n in proto.graph.node]
    assert_same_outputs(proto, model, {"x": rand(3, 7, seed=2)}, atol=0)


def test_a_weight_that_is_a_graph_input_is_left() -> None:
    proto = _dense("q_clip_dq")
    proto.graph.input.append(helper.make_tensor_value_info("w", 1, [5, 7]))  # overridable at run time
    model = ir.from_proto(proto)
    result = TransposeQuantizedWeight()(model)
    assert result.modified is False and "graph input" in result.stats["declined"]["t"]


def test_a_transposed_activation_is_not_a_weight() -> None:
    """Transpose(DQ(Q(x))) of a computed tensor: not matched, and not reported as declined either."""
    proto = make([N("QuantizeLinear", ["x", "s", "z"], ["xi"], name="q"),
                  N("DequantizeLinear", ["xi", "s", "z"], ["xq"], name="dq"),
                  N("Transpose", ["xq"], ["y"], name="t", perm=[1, 0])],
                 {"x": [3, 7]}, {"y": [7, 3]}, [const("s", 0.05), _ints("z", 0)])
    model = ir.from_proto(proto)
    result = TransposeQuantizedWeight()(model)
    assert result.modified is False and result.stats == {"rewritten": 0, "transposes": []}
    assert ops(model) == ["QuantizeLinear", "DequantizeLinear", "Transpose"]
