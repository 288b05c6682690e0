"""ExpandGroupedConv: grouped Convs become dense block-diagonal ones, multiplier-1 depthwise ones only where the
strategy would not keep them all on Latency; the Conv keeps its name; ONNX Runtime agrees before/after."""

from __future__ import annotations

import itertools

import numpy as np
import onnx_ir as ir
import pytest
import torch
from _transform_models import assert_same_outputs, const, make, rand
from onnx import TensorProto, helper, shape_inference

from accelc.fpga_rules import LARGE_LAYER_MULTS
from accelc.hls.legalize import ExpandGroupedConv
from accelc.hls.legalize.expand_grouped_conv import block_diagonal
from accelc.passes import PassContext

# (C_in, C_out, group): depthwise multiplier 1, depthwise multiplier 2, grouped 4 -> 6 with 2 groups
KINDS = {"depthwise": (4, 4, 4), "multiplier2": (4, 8, 4), "grouped": (4, 6, 2)}


def _conv(kind: str, dims: int, side: int = 6, stride: int = 1) -> tuple:
    c_in, c_out, group = KINDS[kind]
    rng = np.random.default_rng(5)
    w = rng.standard_normal((c_out, c_in // group, *[3] * dims)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", group=group, pads=[1] * 2 * dims,
                            strides=[stride] * dims)
    proto = make([node], {"x": ["N", c_in, *[side] * dims]}, {"y": ["N", c_out, *[None] * dims]},
                 [const("w", w), const("b", rng.standard_normal(c_out))])
    return shape_inference.infer_shapes(proto), w, group


def _expand(proto, options: dict | None = None):
    model = ir.from_proto(proto)
    return model, ExpandGroupedConv(PassContext(target_options=options or {}))(model)


def test_block_diagonal_weight_computes_the_grouped_conv() -> None:
    conv = torch.nn.Conv2d(4, 6, 3, groups=2, bias=False)
    w = conv.weight.detach().numpy()
    dense = block_diagonal(w, 2)
    assert dense.shape == (6, 4, 3, 3)
    np.testing.assert_array_equal(dense[:3, :2], w[:3])
    np.testing.assert_array_equal(dense[3:, 2:], w[3:])
    assert not dense[:3, 2:].any() and not dense[3:, :2].any()
    x = torch.from_numpy(rand(2, 4, 7, 7))
    with torch.no_grad():
        np.testing.assert_allclose(torch.nn.functional.conv2d(x, torch.from_numpy(dense)).numpy(),
                                   conv(x).numpy(), rtol=0, atol=1e-5)
    depthwise = np.arange(8 * 1 * 3, dtype=np.float32).reshape(8, 1, 3)  # 1-D, 4 channels, multiplier 2
    dense = block_diagonal(depthwise, 4)
    assert dense.shape == (8, 4, 3)
    for o in range(8):
        np.testing.assert_array_equal(dense[o, o // 2], depthwise[o, 0])
        assert np.count_nonzero(np.delete(dense[o], o // 2, axis=0)) == 0
    with pytest.raises(ValueError, match="group=4 does not divide the 6 output channels"):
        block_diagonal(np.zeros((6, 1, 3, 3), np.float32), 4)


@pytest.mark.parametrize("kind,dims,strategy", list(itertools.product(KINDS, [1, 2], [None, "latency", "Resource"])))
def test_grouped_conv_becomes_dense_unless_native_depthwise_is_safe(kind: str, dims: int, strategy) -> None:
    proto, w, group = _conv(kind, dims)
    model, result = _expand(proto, {"strategy": strategy} if strategy else {})
    (conv,) = model.graph
    # small layers: the automatic choice keeps them on Latency, so only strategy=resource expands a depthwise m=1
    native = kind == "depthwise" and strategy != "Resource"
    assert conv.name == "conv" and conv.outputs[0].name == "y"
    assert result.modified is not native
    assert result.stats == {"expanded": int(not native), "native_depthwise": int(native)}
    assert conv.attributes["group"].value == (group if native else 1)
    np.testing.assert_array_equal(conv.inputs[1].const_value.numpy(), w if native else block_diagonal(w, group))
    assert ("w" in model.graph.initializers) is native  # the grouped weight goes with its last reader
    assert_same_outputs(proto, model, {"x": rand(2, KINDS[kind][0], *[6] * dims)})


def test_one_depthwise_conv_on_resource_expands_them_all() -> None:
    """hls4ml's DepthwiseConv is wrong with the Resource strategy; the automatic choice puts a layer there above
    LARGE_LAYER_MULTS nonzero multiplications (weights x output pixels): then no depthwise conv stays native."""
    rng = np.random.default_rng(6)
    c, side = 8, 9  # 8 channels x 9 taps x 81 pixels is above the threshold; after a stride-2 conv, 8 x 9 x 25 not
    assert c * 9 * side * side > LARGE_LAYER_MULTS >= c * 9 * 5 * 5
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="big", group=c, pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["a", "w2"], ["y"], name="small", group=c, pads=[1, 1, 1, 1], strides=[2, 2])]
    w2 = const("w2", rng.standard_normal((c, 1, 3, 3)))
    shapes = {"x": ["N", c, side, side]}, {"y": ["N", c, 5, 5]}
    proto = shape_inference.infer_shapes(make(nodes, *shapes, [const("w1", rng.standard_normal((c, 1, 3, 3))), w2]))
    model, result = _expand(proto)
    assert result.stats == {"expanded": 2, "native_depthwise": 0}
    assert [n.attributes["group"].value for n in model.graph] == [1, 1]
    assert_same_outputs(proto, model, {"x": rand(2, c, side, side)})
    # Pruned to a third of its taps, the big one stays on Latency as well: both stay native.
    w1 = np.zeros((c, 1, 3, 3), np.float32)
    w1[:, :, 1] = 1.0
    pruned = shape_inference.infer_shapes(make(nodes, *shapes, [const("w1", w1), w2]))
    assert _expand(pruned)[1].stats == {"expanded": 0, "native_depthwise": 2}


def test_unknown_output_shape_expands_the_depthwise_conv() -> None:
    """Without static output dims the multiplications cannot be counted: the safe choice is the dense Conv."""
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=4, pads=[1, 1])
    proto = make([node], {"x": ["N", 4, "L"]}, {"y": ["N", 4, "L"]}, [const("w", rand(4, 1, 3))])
    model, result = _expand(proto)
    assert result.stats == {"expanded": 1, "native_depthwise": 0}
    assert_same_outputs(proto, model, {"x": rand(2, 4, 7)})


def test_convs_it_cannot_rewrite_are_kept_with_the_reason() -> None:
    nodes = [helper.make_node("Conv", ["x", "w_in"], ["a"], name="dynamic", group=2, kernel_shape=[1, 1]),
             helper.make_node("Conv", ["a", "w_bad"], ["b"], name="bad", group=4, kernel_shape=[1, 1]),
             helper.make_node("Conv", ["b", "w_ok"], ["y"], name="ok", group=2, kernel_shape=[1, 1])]
    # Built without ONNX's full check, which would refuse the 'bad' Conv (its group does not fit).
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2]),
         helper.make_tensor_value_info("w_in", TensorProto.FLOAT, [4, 2, 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 2, 2])],
        [const("w_bad", np.ones((6, 1, 1, 1))), const("w_ok", np.ones((4, 3, 1, 1)))])
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    result = ExpandGroupedConv()(model)
    assert result.modified and result.stats == {"expanded": 1, "native_depthwise": 0}
    dynamic, bad, ok = model.graph
    assert [n.attributes["group"].value for n in (dynamic, bad, ok)] == [2, 4, 1]
    dense = ok.inputs[1].const_value.numpy()
    assert dense.shape == (4, 6, 1, 1) and np.count_nonzero(dense) == 12
    assert result.warnings == ["Conv 'dynamic' (group=2) kept: the weight is not a constant",
                               "Conv 'bad' (group=4) kept: group=4 does not fit weight (6, 1, 1, 1)"]
