"""Channel pruning: smaller shapes, and exactly the original model with the removed channels cut at their consumers."""

from __future__ import annotations

import io
import json

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from _transform_models import const, make
from onnx import helper

from accelc.reference import Reference
from accelc.transforms.compress.channel_pruning import prune_channels

RNG = np.random.default_rng(0)


def _w(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _conv(inp: str, out: str, w: str, name: str, **attrs) -> onnx.NodeProto:
    return helper.make_node("Conv", [inp, w, f"{w}_b"], [out], name=name, **attrs)


def _conv_inits(w: str, c_out: int, c_in: int, k: int = 1) -> list:
    return [const(w, _w(c_out, c_in, k, k)), const(f"{w}_b", _w(c_out))]


def _node(model: ir.Model, name: str) -> ir.Node:
    return next(n for n in model.graph if n.name == name)


def _param(model: ir.Model, node: str, index: int) -> np.ndarray:
    return _node(model, node).inputs[index].const_value.numpy()


def _kept(before: ir.Model, after: ir.Model, node: str, bias: int = 2) -> list[int]:
    """Which output channels survived, read off the (distinct, random) bias values."""
    old, new = _param(before, node, bias), _param(after, node, bias)
    return [int(np.flatnonzero(old == v)[0]) for v in new]


def _removed(before: ir.Model, after: ir.Model, node: str, bias: int = 2) -> list[int]:
    kept = set(_kept(before, after, node, bias))
    return [c for c in range(len(_param(before, node, bias))) if c not in kept]


def _check(model: ir.Model) -> onnx.ModelProto:
    proto = ir.to_proto(model)
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    return proto


def _assert_exact(proto: onnx.ModelProto, pruned: ir.Model, cuts: list[tuple[str, int, int, list[int]]],
                  x: np.ndarray) -> None:
    """The pruned model == the original with the removed channels zeroed at their consumers (node, input, axis,
    indices): exact even with biases and BatchNorm between, since a removed channel then reaches nothing."""
    ref = ir.from_proto(proto)
    for node, index, axis, indices in cuts:
        value = _node(ref, node).inputs[index]
        arr = value.const_value.numpy().copy()
        idx = [slice(None)] * arr.ndim
        idx[axis] = indices
        arr[tuple(idx)] = 0
        value.const_value = ir.tensor(arr, name=value.name)
    want = Reference(ir.to_proto(ref)).run([x])
    got = Reference(_check(pruned)).run([x])
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)


def _features(channels: list[int], per_channel: int) -> list[int]:
    return [c * per_channel + j for c in channels for j in range(per_channel)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_conv_relu_batchnorm_conv_flatten_gemm_from_torch() -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
            self.conv2, self.fc = nn.Conv2d(8, 6, 3), nn.Linear(6 * 4 * 4, 5)

        def forward(self, x):
            x = self.bn(torch.relu(self.conv1(x)))
            return self.fc(torch.flatten(self.conv2(x), 1))

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():  # BN statistics that matter, so a wrong slice shows
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-1, 1)
    x = torch.randn(2, 3, 6, 6)
    buf = io.BytesIO()
    torch.onnx.export(net, (x,), buf, opset_version=13, dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    proto = onnx.load_from_string(buf.getvalue())
    assert "BatchNormalization" in [n.op_type for n in proto.graph.node]
    original, model = ir.from_proto(proto), ir.from_proto(proto)
    conv1, conv2, bn, fc = (next(n.name for n in model.graph if n.op_type == op and key in n.name)
                            for op, key in [("Conv", "conv1"), ("Conv", "conv2"), ("BatchNormalization", ""),
                                            ("Gemm", "")])

    stats = prune_channels(model, 0.5)

    assert _param(model, conv1, 1).shape == (4, 3, 3, 3)
    assert _param(model, conv2, 1).shape == (3, 4, 3, 3)
    assert all(_param(model, bn, i).shape == (4,) for i in range(1, 5))
    assert _param(model, fc, 1).shape == (5, 3 * 16)  # transB=1: input features on axis 1
    assert stats["layers"][conv1] == {"channels_before": 8, "channels_after": 4, "ratio": 0.5}
    assert stats["layers"][conv2]["channels_after"] == 3
    assert "graph output" in stats["skipped"][fc]
    cuts = [(conv2, 1, 1, _removed(original, model, conv1)),
            (fc, 1, 1, _features(_removed(original, model, conv2), 16))]
    _assert_exact(proto, model, cuts, x.numpy())


def _chain() -> onnx.ModelProto:
    nodes = [
        _conv("x", "c1", "w1", "conv1"), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        _conv("r1", "c2", "w2", "conv2"), helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        _conv("r2", "c3", "w3", "conv3"), helper.make_node("GlobalAveragePool", ["c3"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc"),
    ]
    inits = _conv_inits("w1", 8, 2) + _conv_inits("w2", 8, 8) + _conv_inits("w3", 6, 8)
    return make(nodes, {"x": ["N", 2, 4, 4]}, {"y": ["N", 3]}, inits + [const("wf", _w(6, 3)), const("bf", _w(3))])


def test_realised_ratios_exclusions_and_overrides() -> None:
    proto = _chain()
    original, model = ir.from_proto(proto), ir.from_proto(proto)
    stats = prune_channels(model, 0.25, exclude={"conv3"}, overrides={"conv2": 0.5})

    assert json.loads(json.dumps(stats)) == stats
    layers = stats["layers"]
    assert [layers[n]["channels_after"] for n in ("conv1", "conv2", "conv3", "fc")] == [6, 4, 6, 3]
    for name, asked in [("conv1", 0.25), ("conv2", 0.5)]:
        before, after = layers[name]["channels_before"], layers[name]["channels_after"]
        assert abs(after - before * (1 - asked)) <= 1 and layers[name]["ratio"] == 1 - after / before
    assert stats["skipped"]["conv3"] == "excluded"
    assert (stats["channels_before"], stats["channels_after"]) == (25, 19)
    assert stats["groups"] == 4
    assert _param(model, "conv3", 1).shape == (6, 4, 1, 1)  # excluded outputs stay, its inputs follow conv2
    assert _param(model, "fc", 1).shape == (6, 3)
    cuts = [("conv2", 1, 1, _removed(original, model, "conv1")), ("conv3", 1, 1, _removed(original, model, "conv2"))]
    _assert_exact(proto, model, cuts, _w(3, 2, 4, 4))


def test_at_least_one_channel_is_kept() -> None:
    model = ir.from_proto(_chain())
    stats = prune_channels(model, 0.99)
    assert stats["layers"]["conv1"]["channels_after"] == 1
    assert _param(model, "conv2", 1).shape == (1, 1, 1, 1)
    _check(model)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="ratio"):
        prune_channels(ir.from_proto(_chain()), 1.0)
    with pytest.raises(ValueError, match="criterion"):
        prune_channels(ir.from_proto(_chain()), 0.5, criterion="l3")


def _residual() -> onnx.ModelProto:
    nodes = [
        _conv("x", "c1", "w1", "conv1", pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
        _conv("r1", "c2", "w2", "conv2", pads=[1, 1, 1, 1]), helper.make_node("Add", ["c1", "c2"], ["a"], name="add"),
        _conv("a", "y", "w3", "conv3"),
    ]
    inits = _conv_inits("w1", 6, 3, 3) + _conv_inits("w2", 6, 6, 3) + _conv_inits("w3", 4, 6)
    return make(nodes, {"x": ["N", 3, 5, 5]}, {"y": ["N", 4, 5, 5]}, inits)


def test_residual_add_prunes_both_sides_alike() -> None:
    proto = _residual()
    original, model = ir.from_proto(proto), ir.from_proto(proto)
    stats = prune_channels(model, 0.5)

    kept = _kept(original, model, "conv1")
    assert kept == _kept(original, model, "conv2") and len(kept) == 3
    score = sum(np.abs(_param(original, n, 1)).reshape(6, -1).sum(axis=1) for n in ("conv1", "conv2"))
    assert kept == sorted(np.argsort(-score)[:3].tolist())  # scored by the summed norms of both members
    assert stats["groups"] == 2 and "conv1" not in stats["skipped"]
    removed = _removed(original, model, "conv1")
    _assert_exact(proto, model, [("conv2", 1, 1, removed), ("conv3", 1, 1, removed)], _w(2, 3, 5, 5))


def test_excluding_one_side_of_a_residual_keeps_the_other_whole() -> None:
    model = ir.from_proto(_residual())
    stats = prune_channels(model, 0.5, exclude=["conv2"])
    assert stats["skipped"]["conv2"] == "excluded" and "excluded 'conv2'" in stats["skipped"]["conv1"]
    assert _param(model, "conv1", 1).shape == (6, 3, 3, 3) and _param(model, "conv3", 1).shape == (4, 6, 1, 1)


def test_residual_add_of_a_graph_input_is_skipped_with_a_reason() -> None:
    nodes = [_conv("x", "c1", "w1", "conv1"), helper.make_node("Add", ["x", "c1"], ["a"], name="add"),
             _conv("a", "y", "w2", "conv2")]
    proto = make(nodes, {"x": ["N", 4, 3, 3]}, {"y": ["N", 3, 3, 3]}, _conv_inits("w1", 4, 4) + _conv_inits("w2", 3, 4))
    model = ir.from_proto(proto)
    stats = prune_channels(model, 0.5)
    assert "'x'" in stats["skipped"]["conv1"] and "add" in stats["skipped"]["conv1"]
    assert stats["layers"]["conv1"]["channels_after"] == 4 and stats["channels_after"] == stats["channels_before"]
    assert _param(model, "conv1", 1).shape == (4, 4, 1, 1) and _param(model, "conv2", 1).shape == (3, 4, 1, 1)
    _assert_exact(proto, model, [], _w(2, 4, 3, 3))


def test_concat_on_the_channel_axis_maps_each_segment() -> None:
    nodes = [
        _conv("x", "a", "wa", "conva"), _conv("x", "b", "wb", "convb"),
        helper.make_node("Concat", ["a", "b"], ["c"], name="cat", axis=1),
        helper.make_node("Relu", ["c"], ["r"], name="relu"), _conv("r", "y", "w3", "conv3"),
    ]
    inits = _conv_inits("wa", 4, 3) + _conv_inits("wb", 6, 3) + _conv_inits("w3", 2, 10)
    proto = make(nodes, {"x": ["N", 3, 4, 4]}, {"y": ["N", 2, 4, 4]}, inits)
    original, model = ir.from_proto(proto), ir.from_proto(proto)
    prune_channels(model, 0.5)
    assert _param(model, "conva", 1).shape[0] == 2 and _param(model, "convb", 1).shape[0] == 3
    assert _param(model, "conv3", 1).shape == (2, 5, 1, 1)
    removed = _removed(original, model, "conva") + [4 + c for c in _removed(original, model, "convb")]
    _assert_exact(proto, model, [("conv3", 1, 1, removed)], _w(2, 3, 4, 4))


def test_matmul_add_mlp_prunes_hidden_neurons() -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="add1"),
        helper.make_node("Relu", ["hb"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["o"], name="mm2"),
        helper.make_node("Add", ["o", "b2"], ["y"], name="add2"),
    ]
    inits = [const("w1", _w(6, 8)), const("b1", _w(8)), const("w2", _w(8, 5)), const("b2", _w(5))]
    proto = make(nodes, {"x": ["N", 6]}, {"y": ["N", 5]}, inits)
    original, model = ir.from_proto(proto), ir.from_proto(proto)
    stats = prune_channels(model, 0.5)
    assert _param(model, "mm1", 1).shape == (6, 4) and _param(model, "add1", 1).shape == (4,)
    assert _param(model, "mm2", 1).shape == (4, 5) and _param(model, "add2", 1).shape == (5,)
    assert "graph output" in stats["skipped"]["mm2"]
    kept = _kept(original, model, "add1", bias=1)
    np.testing.assert_array_equal(_param(model, "mm1", 1), _param(original, "mm1", 1)[:, kept])
    _assert_exact(proto, model, [("mm2", 1, 0, _removed(original, model, "add1", bias=1))], _w(3, 6))


@pytest.mark.parametrize("shape", [[0, -1], [-1, 36]])
def test_reshape_to_features_acts_as_flatten(shape: list[int]) -> None:
    nodes = [_conv("x", "c", "w1", "conv"), helper.make_node("Reshape", ["c", "s"], ["f"], name="reshape"),
             helper.make_node("MatMul", ["f", "w2"], ["y"], name="mm")]
    inits = _conv_inits("w1", 4, 2) + [onnx.numpy_helper.from_array(np.array(shape, np.int64), "s"),
                                       const("w2", _w(36, 3))]
    proto = make(nodes, {"x": ["N", 2, 3, 3]}, {"y": ["N", 3]}, inits)
    original, model = ir.from_proto(proto), ir.from_proto(proto)
    prune_channels(model, 0.5)
    assert _param(model, "mm", 1).shape == (18, 3)
    assert _param(model, "reshape", 1).tolist() == [shape[0], -1 if shape[1] == -1 else 18]
    _assert_exact(proto, model, [("mm", 1, 0, _features(_removed(original, model, "conv"), 9))], _w(2, 2, 3, 3))


def test_depthwise_consumer_follows_the_kept_channels() -> None:
    nodes = [
        _conv("x", "c1", "w1", "conv1"), helper.make_node("Relu", ["c1"], ["r"], name="relu"),
        _conv("r", "d", "wd", "dw", group=4, pads=[1, 1, 1, 1]), _conv("d", "y", "w3", "conv3"),
    ]
    inits = _conv_inits("w1", 4, 2) + _conv_inits("wd", 8, 1, 3) + _conv_inits("w3", 3, 8)
    proto = make(nodes, {"x": ["N", 2, 4, 4]}, {"y": ["N", 3, 4, 4]}, inits)
    original, model = ir.from_proto(proto), ir.from_proto(proto)
    stats = prune_channels(model, 0.5)
    assert _node(model, "dw").attributes.get_int("group") == 2
    assert _param(model, "dw", 1).shape == (4, 1, 3, 3) and _param(model, "dw", 2).shape == (4,)
    assert _param(model, "conv3", 1).shape == (3, 4, 1, 1)
    assert "dw" not in stats["layers"]
    removed = _removed(original, model, "conv1")
    assert _removed(original, model, "dw") == _features(removed, 2)  # multiplier 2: outputs 2c, 2c+1 follow c
    _assert_exact(proto, model, [("conv3", 1, 1, _features(removed, 2))], _w(2, 2, 4, 4))


@pytest.mark.parametrize("tail, reason", [
    ([helper.make_node("Relu", ["c"], ["y"], name="relu")], "graph output 'y'"),
    ([helper.make_node("Transpose", ["c"], ["t"], name="tr", perm=[0, 2, 3, 1]),
      helper.make_node("Relu", ["t"], ["y"], name="relu")], "Transpose 'tr'"),
    ([helper.make_node("Concat", ["c", "c"], ["y"], name="cat", axis=2)], "another axis"),
])
def test_layers_whose_channels_cannot_be_rewired_are_left_whole(tail: list, reason: str) -> None:
    out_shape = {"relu": ["N", 4, 3, 3], "tr": ["N", 3, 3, 4], "cat": ["N", 4, 6, 3]}[tail[0].name]
    proto = make([_conv("x", "c", "w1", "conv")] + tail, {"x": ["N", 2, 3, 3]}, {"y": out_shape},
                 _conv_inits("w1", 4, 2))
    model = ir.from_proto(proto)
    stats = prune_channels(model, 0.5)
    assert reason in stats["skipped"]["conv"]
    assert _param(model, "conv", 1).shape == (4, 2, 1, 1)
    assert list(model.graph.outputs[0].shape)[1:] == out_shape[1:]
    _assert_exact(proto, model, [], _w(2, 2, 3, 3))


@pytest.mark.parametrize("criterion, kept", [("l1", [0, 2]), ("l2", [1, 2])])
def test_l1_and_l2_pick_different_channels(criterion: str, kept: list[int]) -> None:
    # L1: 4, 3.5, 10, 3.6 -> keeps 0, 2;  L2: 2, 3.5, 10, 1.8 -> keeps 1, 2
    w = np.array([[1, 1, 1, 1], [3.5, 0, 0, 0], [10, 0, 0, 0], [0.9, 0.9, 0.9, 0.9]], np.float32).reshape(4, 1, 2, 2)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"), _conv("r", "y", "w2", "conv2")]
    proto = make(nodes, {"x": ["N", 1, 3, 3]}, {"y": ["N", 2, 2, 2]}, [const("w1", w)] + _conv_inits("w2", 2, 4))
    model = ir.from_proto(proto)
    prune_channels(model, 0.5, criterion=criterion)
    np.testing.assert_array_equal(_param(model, "conv1", 1), w[kept])
    removed = [c for c in range(4) if c not in kept]
    _assert_exact(proto, model, [("conv2", 1, 1, removed)], _w(2, 1, 3, 3))
