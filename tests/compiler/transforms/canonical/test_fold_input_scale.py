"""FoldInputScale: per-channel x / 255, x * s, (x - mean) / std folded into the next Conv/Gemm/MatMul where exact;
a shifted input before a padded Conv (and anything not per-channel) kept. ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper, numpy_helper

from accelc.transforms.canonical import FoldInputScale

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _pixels(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, shape).astype(np.float32)


def _normalize(mean=MEAN, std=STD, shape=(1, 3, 1, 1)) -> tuple[list, list]:
    """x -> (x - mean) / std -> n per channel, as torch writes it (constants of shape (1, C, 1, 1) for images)."""
    nodes = [helper.make_node("Sub", ["x", "mean"], ["centered"], name="sub"),
             helper.make_node("Div", ["centered", "std"], ["n"], name="div")]
    return nodes, [const("mean", np.reshape(mean, shape)), const("std", np.reshape(std, shape))]


def _conv(src: str, pads: int, group: int = 1, bias: bool = True, cin: int = 3) -> tuple[list, list]:
    inputs = [src, "w", "b"] if bias else [src, "w"]
    node = helper.make_node("Conv", inputs, ["y"], name="conv", pads=[pads] * 4, group=group)
    inits = [const("w", rand(6, cin // group, 3, 3, seed=1))] + ([const("b", rand(6, seed=2))] if bias else [])
    return [node], inits


def _fold(model_proto, feeds, folded: dict, want_ops: list[str], atol: float = 1e-4):
    model = ir.from_proto(model_proto)
    result = FoldInputScale()(model)
    assert result.modified is True
    assert result.stats["folded"] == folded
    assert result.warnings == []
    assert ops(model) == want_ops
    assert [o.name for o in model.graph.outputs] == ["y"]
    assert_same_outputs(model_proto, model, feeds, atol=atol)
    return model


@pytest.mark.parametrize("pads", [0, 1])
def test_divide_by_255_folds_into_a_conv_padded_or_not(pads: int) -> None:
    conv, inits = _conv("scaled", pads, cin=1)
    model_proto = make([helper.make_node("Div", ["x", "k"], ["scaled"], name="div"), *conv],
                       {"x": ["N", 1, 8, 8]}, {"y": ["N", 6, 8 - 2 + 2 * pads, 8 - 2 + 2 * pads]},
                       [const("k", 255.0), *inits])
    model = _fold(model_proto, {"x": _pixels(2, 1, 8, 8)}, {"Conv": 1}, ["Conv"])
    assert sorted(model.graph.initializers) == ["b", "conv_weight"]  # the 255 and the old weight are gone
    assert list(model.graph)[0].inputs[0] is model.graph.inputs[0]


def test_a_constant_node_scale_folds_and_the_constant_goes() -> None:
    """The TorchScript exporter writes `x / 255.0` with a Constant node."""
    conv, inits = _conv("scaled", 1, cin=1)
    k = helper.make_node("Constant", [], ["k"], name="k", value=numpy_helper.from_array(np.array(255.0, np.float32)))
    model_proto = make([k, helper.make_node("Div", ["x", "k"], ["scaled"], name="div"), *conv],
                       {"x": ["N", 1, 8, 8]}, {"y": ["N", 6, 8, 8]}, inits)
    _fold(model_proto, {"x": _pixels(2, 1, 8, 8)}, {"Conv": 1}, ["Conv"])


def test_per_channel_scale_folds_into_a_padded_grouped_conv() -> None:
    conv, inits = _conv("scaled", 1, group=3, bias=False)
    model_proto = make([helper.make_node("Mul", ["x", "s"], ["scaled"], name="mul"), *conv],
                       {"x": ["N", 3, 6, 6]}, {"y": ["N", 6, 6, 6]},
                       [const("s", np.reshape([0.5, 2.0, -3.0], (3, 1, 1))), *inits])
    _fold(model_proto, {"x": rand(2, 3, 6, 6)}, {"Conv": 1}, ["Conv"])


@pytest.mark.parametrize("group", [1, 3])
def test_mean_std_folds_into_an_unpadded_conv_weights_and_bias(group: int) -> None:
    norm, consts = _normalize()
    conv, inits = _conv("n", 0, group=group, bias=group == 1)
    model_proto = make([*norm, *conv], {"x": ["N", 3, 6, 6]}, {"y": ["N", 6, 4, 4]}, consts + inits)
    model = _fold(model_proto, {"x": rand(2, 3, 6, 6)}, {"Conv": 1}, ["Conv"])
    assert len(list(model.graph)[0].inputs) == 3  # the shift became a bias (a new one without a bias before)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_scale_and_shift_fold_into_a_gemm(trans_b: int) -> None:
    """s * x with the constant first, then + t; alpha and beta kept right."""
    w = rand(3, 4, seed=1) if trans_b else rand(4, 3, seed=1)
    nodes = [helper.make_node("Mul", ["s", "x"], ["scaled"], name="mul"),
             helper.make_node("Add", ["scaled", "t"], ["shifted"], name="add"),
             helper.make_node("Gemm", ["shifted", "w", "c"], ["y"], name="fc", transB=trans_b, alpha=0.5, beta=2.0)]
    model_proto = make(nodes, {"x": ["N", 4]}, {"y": ["N", 3]},
                       [const("s", [1.0, 2.0, 0.25, -1.0]), const("t", [0.1, -0.2, 0.3, 0.0]), const("w", w),
                        const("c", rand(3, seed=2))])
    _fold(model_proto, {"x": rand(5, 4)}, {"Gemm": 1}, ["Gemm"])


def test_mean_std_folds_into_the_bias_add_of_a_matmul() -> None:
    norm, consts = _normalize([0.5, 0.1, 0.2, 0.3], [0.2, 0.5, 1.0, 2.0], shape=(1, 4))
    nodes = [*norm, helper.make_node("MatMul", ["n", "w"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "b"], ["y"], name="bias")]
    model_proto = make(nodes, {"x": ["N", 4]}, {"y": ["N", 3]},
                       [*consts, const("w", rand(4, 3, seed=1)), const("b", rand(3, seed=2))])
    _fold(model_proto, {"x": rand(5, 4)}, {"MatMul": 1}, ["MatMul", "Add"])


def test_mean_std_before_a_bare_matmul_adds_the_shift() -> None:
    norm, consts = _normalize([0.5, 0.1, 0.2, 0.3], [0.2, 0.5, 1.0, 2.0], shape=(4,))
    model_proto = make([*norm, helper.make_node("MatMul", ["n", "w"], ["y"], name="mm")],
                       {"x": ["N", 4]}, {"y": ["N", 3]}, [*consts, const("w", rand(4, 3, seed=1))])
    model = _fold(model_proto, {"x": rand(5, 4)}, {"MatMul": 1}, ["MatMul", "Add"])
    assert list(model.graph)[-1].name == "mm"  # the Add produces the MatMul's tensor


def test_mean_std_before_a_padded_conv_is_kept() -> None:
    """Not exact: the Conv's padded zeros are not normalized in the model, they would be after folding."""
    norm, consts = _normalize()
    conv, inits = _conv("n", 1)
    model_proto = make([*norm, *conv], {"x": ["N", 3, 6, 6]}, {"y": ["N", 6, 6, 6]}, consts + inits)
    model = ir.from_proto(model_proto)
    result = FoldInputScale()(model)
    assert result.modified is False
    assert ops(model) == ["Sub", "Div", "Conv"]
    assert result.stats == {"folded": {}, "nodes_removed": 0}
    assert len(result.warnings) == 1 and "Sub/Div before Conv 'conv' kept" in result.warnings[0]
    assert "pads with zeros" in result.warnings[0]
    assert_same_outputs(model_proto, model, {"x": rand(2, 3, 6, 6)})


def _kept(nodes, inits, in_shape, out_shape, outputs=None) -> None:
    model_proto = make(nodes, {"x": in_shape}, outputs or {"y": out_shape}, inits)
    model = ir.from_proto(model_proto)
    before = ops(model)
    result = FoldInputScale()(model)
    assert result.modified is False and ops(model) == before and result.warnings == []


def test_scales_that_are_not_per_channel_or_not_linear_are_kept() -> None:
    conv, inits = _conv("scaled", 1)
    for node, k in [
        (helper.make_node("Mul", ["x", "k"], ["scaled"]), const("k", rand(1, 1, 6, 6))),  # varies over the map
        (helper.make_node("Div", ["k", "x"], ["scaled"]), const("k", 2.0)),  # a constant divided by x
        (helper.make_node("Div", ["x", "k"], ["scaled"]), const("k", np.reshape([1.0, 0.0, 2.0], (3, 1, 1)))),
    ]:
        _kept([node, *conv], [k, *inits], ["N", 3, 6, 6], ["N", 6, 6, 6])


def test_a_scale_read_twice_or_broadcasting_the_input_is_kept() -> None:
    conv, inits = _conv("scaled", 1)
    div = helper.make_node("Div", ["x", "k"], ["scaled"], name="div")
    both = {"y": ["N", 6, 6, 6], "scaled": ["N", 3, 6, 6]}
    _kept([div, *conv], [const("k", 255.0), *inits], ["N", 3, 6, 6], None, outputs=both)
    relu = helper.make_node("Relu", ["scaled"], ["r"])
    _kept([div, relu, *conv], [const("k", 255.0), *inits], ["N", 3, 6, 6], None, outputs={"y": both["y"], "r": [
        "N", 3, 6, 6]})
    grow = helper.make_node("Mul", ["x", "k"], ["scaled"])  # a 1-channel input made 3 channels
    _kept([grow, *conv], [const("k", np.reshape([1.0, 2.0, 3.0], (3, 1, 1))), *inits], ["N", 1, 6, 6],
          ["N", 6, 6, 6])


def test_a_conv_with_computed_weights_is_kept() -> None:
    model_proto = make([helper.make_node("Relu", ["wr"], ["w"]), helper.make_node("Div", ["x", "k"], ["s"]),
                        helper.make_node("Conv", ["s", "w"], ["y"], name="conv")],
                       {"x": ["N", 3, 6, 6], "wr": [6, 3, 3, 3]}, {"y": ["N", 6, 4, 4]}, [const("k", 255.0)])
    model = ir.from_proto(model_proto)
    assert FoldInputScale()(model).modified is False


def test_scale_and_shift_fold_across_a_flatten_into_a_gemm() -> None:
    """An MLP on raw images: (x - a per-pixel mean) / 255, then x.flatten(1), then a Linear."""
    nodes = [helper.make_node("Sub", ["x", "mean"], ["centered"], name="sub"),
             helper.make_node("Div", ["centered", "k"], ["scaled"], name="div"),
             helper.make_node("Flatten", ["scaled"], ["flat"], name="flatten", axis=1),
             helper.make_node("Gemm", ["flat", "w", "c"], ["y"], name="fc", transB=1)]
    model_proto = make(nodes, {"x": ["N", 2, 3, 3]}, {"y": ["N", 5]},
                       [const("mean", 100 * rand(2, 3, 3, seed=3)), const("k", 255.0), const("w", rand(5, 18, seed=1)),
                        const("c", rand(5, seed=2))])
    _fold(model_proto, {"x": _pixels(4, 2, 3, 3)}, {"Gemm": 1}, ["Flatten", "Gemm"])


def test_a_flatten_of_another_axis_stops_the_chain() -> None:
    nodes = [helper.make_node("Div", ["x", "k"], ["scaled"], name="div"),
             helper.make_node("Flatten", ["scaled"], ["flat"], name="flatten", axis=2),
             helper.make_node("MatMul", ["flat", "w"], ["y"], name="fc")]
    _kept(nodes, [const("k", rand(1, 2, 1, 1)), const("w", rand(9, 5, seed=1))], ["N", 2, 3, 3], ["M", 5])
