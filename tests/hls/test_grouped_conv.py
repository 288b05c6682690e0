"""Grouped and depthwise Convs on the fpga target: rewritten into dense block-diagonal Convs before hls4ml.

hls4ml 1.3's own depthwise layer is exact only for channel multiplier 1 with the Latency strategy (its
Resource variant aborts in io_parallel and computes wrong numbers in io_stream; multiplier > 1 aborts or
hangs), and it has no grouped conv at all, so the legalize-fpga pass expand-grouped-conv
(accelc.hls.legalize.expand_grouped_conv, tested on its own in tests/hls/legalize) expands every grouped Conv
into a dense one. The fast tests here check the support check and that prepare keeps the expanded (and native)
Convs, names and numbers; the slow ones compile hls4ml C simulations (three builds: a 2-D net in io_stream, the
same net in io_parallel with hls4ml's native depthwise layer for the multiplier-1 conv, a 1-D net) and compare
with ONNX Runtime, torch and the cpu target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from torch import nn

import accelc
from accelc.hls.legalize import LegalizeFpga
from accelc.hls.legalize.expand_grouped_conv import block_diagonal
from accelc.hls.prepare import prepare
from accelc.hls.support import fpga_supports
from accelc.passes import PassContext
from accelc.reference import Reference
from accelc.transforms.canonical import Canonicalize, InferShapes

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

N = 16
FIXED_POINT_RTOL = 0.05  # of max(1, max |reference|): what fixed point explains on these tiny nets
CPU_ATOL = 1e-5


# --- models -------------------------------------------------------------------------------------------------


class GroupedNet2d(nn.Module):
    """Depthwise-separable block (3x3 depthwise m=1 + 1x1 pointwise, ReLUs), grouped conv 4->6 with 2 groups,
    depthwise with multiplier 2 (6->12, stride 2), then a linear head (hls4ml needs one after a Flatten)."""

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.pw = nn.Conv2d(4, 4, 1)
        self.grouped = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.dw_m2 = nn.Conv2d(6, 12, 3, stride=2, groups=6, bias=False)
        self.fc = nn.Linear(12 * 3 * 3, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.pw(torch.relu(self.dw(x))))
        x = torch.relu(self.grouped(x))
        return self.fc(self.dw_m2(x).flatten(1))


class GroupedNet1d(nn.Module):
    """The same three kinds of grouped conv in 1-D."""

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv1d(4, 4, 3, padding=1, groups=4)
        self.grouped = nn.Conv1d(4, 6, 3, padding=1, groups=2)
        self.dw_m2 = nn.Conv1d(6, 12, 3, groups=6)
        self.fc = nn.Linear(12 * 14, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.dw(x))
        x = torch.relu(self.grouped(x))
        return self.fc(torch.relu(self.dw_m2(x)).flatten(1))


IN_2D = (1, 4, 8, 8)
IN_1D = (1, 4, 16)


def export(net: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    torch.onnx.export(net, torch.zeros(shape), str(path), opset_version=13, dynamo=False)
    return path


def seeded(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def torch_out(net: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def net_2d() -> nn.Module:
    torch.manual_seed(0)
    return GroupedNet2d().eval()


def net_1d() -> nn.Module:
    torch.manual_seed(1)
    return GroupedNet1d().eval()


def canonical(path: Path) -> onnx.ModelProto:
    model = ir.load(str(path))
    Canonicalize()(model)
    return ir.to_proto(model)


def conv_groups(model: onnx.ModelProto) -> dict[str, int]:
    return {n.name: next((a.i for a in n.attribute if a.name == "group"), 1)
            for n in model.graph.node if n.op_type == "Conv"}


# --- through prepare (no hls4ml) ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["resource", "latency"])
def test_prepare_keeps_the_expanded_convs_names_and_numbers(tmp_path, strategy: str) -> None:
    model = canonical(export(net_2d(), IN_2D, tmp_path / "g.onnx"))
    groups = conv_groups(model)
    assert sorted(groups.values()) == [1, 2, 4, 6]
    legal = ir.from_proto(model)
    LegalizeFpga(PassContext(target_options={"strategy": strategy}))(legal)
    legalized = ir.to_proto(legal)
    prepared = prepare(legalized)
    after = conv_groups(prepared.model)
    # Every Conv keeps its (sanitized) name and maps back to its canonical node: the per-layer trace aligns.
    assert sorted(prepared.node_names[n] for n in after) == sorted(groups)
    native = strategy == "latency"
    depthwise_m1 = next(n for n, g in after.items() if groups[prepared.node_names[n]] == 4)
    for name, group in after.items():
        assert group == (4 if native and name == depthwise_m1 else 1), (name, group)
    # Each expanded weight holds the grouped weight's values in its diagonal blocks and zeros elsewhere.
    before = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights = {n.name: before[n.input[1]] for n in model.graph.node if n.op_type == "Conv"}
    inits = {i.name: numpy_helper.to_array(i) for i in prepared.model.graph.initializer}
    for node in prepared.model.graph.node:
        if node.op_type != "Conv":
            continue
        origin = prepared.node_names[node.name]
        grouped, group = weights[origin], groups[origin]
        want = grouped if after[node.name] == group else block_diagonal(grouped, group)
        channels_last = np.moveaxis(want, 1, -1)  # qonnx stores channels-last Conv weights as (O, *k, I)
        np.testing.assert_array_equal(inits[node.input[1]], channels_last, err_msg=node.name)
    # The prepared (channels-last) model computes what the grouped one does.
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    wrapper = ModelWrapper(prepared.model)
    in_name, out_name = prepared.model.graph.input[0].name, prepared.model.graph.output[0].name
    for seed in range(3):
        x = seeded(IN_2D, seed)
        want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        got = execute_onnx(wrapper, {in_name: x})[out_name]
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=0, atol=1e-5)


# --- the support check --------------------------------------------------------------------------------------


def test_grouped_and_depthwise_convs_are_supported(tmp_path) -> None:
    for net, shape, name in ((net_2d(), IN_2D, "g2.onnx"), (net_1d(), IN_1D, "g1.onnx")):
        model = ir.load(str(export(net, shape, tmp_path / name)))
        Canonicalize()(model)
        assert fpga_supports(model) == []


def _support_of(w_shape: tuple[int, ...], group: int, in_channels: int) -> list:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="bad_group", group=group, kernel_shape=[3, 3])
    graph = helper.make_graph(
        [node], "s",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, in_channels, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones(w_shape, np.float32), "w")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    model = ir.from_proto(proto)
    try:
        InferShapes()(model)
    except Exception:  # a malformed conv may defeat shape inference; the check must still work
        pass
    return fpga_supports(model)


@pytest.mark.parametrize(
    ("w_shape", "group", "in_channels", "reason"),
    [
        ((6, 1, 3, 3), 4, 4, "group=4 does not divide the 6 output channels"),
        ((4, 1, 3, 3), 2, 4, "group=2 with weights for 2 input channels, but the input has 4"),
        ((4, 4, 3, 3), 0, 4, "group=0"),
    ],
)
def test_malformed_grouped_conv_is_refused_with_node_reason_and_hint(w_shape, group, in_channels, reason) -> None:
    found = _support_of(w_shape, group, in_channels)
    assert len(found) == 1, found
    (u,) = found
    assert (u.op, u.node, u.target) == ("Conv", "bad_group", "fpga")
    assert reason in u.reason, u.reason
    assert "C_out, C_in/group" in u.hint
    text = str(u)
    for part in ("Conv", "'bad_group'", "fpga", reason, "hint:"):
        assert part in text, (part, text)


def test_grouped_conv_with_computed_weights_is_refused_as_before() -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="dyn", group=2, kernel_shape=[3, 3])
    graph = helper.make_graph(
        [node], "s",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    (u,) = fpga_supports(model)
    assert u.node == "dyn" and "weights are not a constant initializer" in u.reason


# --- end to end: hls4ml C simulation vs ONNX Runtime, torch and the cpu target ------------------------------


def check_fpga_against_float(art, onnx_path: Path, net: nn.Module, x: np.ndarray) -> float:
    """Emulator vs ONNX Runtime (fixed-point tolerance), cpu target vs torch (1e-5); returns the fpga error."""
    ref = Reference(onnx.load(str(onnx_path))).run([x])[0]
    np.testing.assert_allclose(ref, torch_out(net, x), rtol=0, atol=CPU_ATOL)
    y = art.predict(x)
    assert y.shape == ref.shape
    err = float(np.max(np.abs(y - ref)))
    assert err < FIXED_POINT_RTOL * max(1.0, float(np.max(np.abs(ref)))), err
    cpu = accelc.compile(onnx_path, target="cpu", out=onnx_path.parent / "cpu")
    np.testing.assert_allclose(cpu.predict(x), torch_out(net, x), rtol=0, atol=CPU_ATOL)
    return err


def check_per_layer(art, out: Path, x: np.ndarray) -> dict[str, float]:
    """Every Conv of the artifact shows up in the hls4ml trace under its own name, close to the float value."""
    report = accelc.verify(art, x)
    convs = {n.name for n in onnx.load(str(out / "model.onnx")).graph.node if n.op_type == "Conv"}
    rows = {r.onnx_node: r for r in report.per_layer if r.onnx_node in convs}
    assert set(rows) == convs, (sorted(rows), sorted(convs))
    for row in rows.values():
        assert np.isfinite(row.max_abs_err) and row.rel_err < FIXED_POINT_RTOL, row
    assert report.first_jump is None
    return {name: row.max_abs_err for name, row in rows.items()}


def firmware(out: Path) -> str:
    return (out / "hls" / "firmware" / "myproject.cpp").read_text()


@pytest.mark.slow
def test_grouped_2d_net_on_fpga_io_stream_matches_float_and_cpu(tmp_path) -> None:
    net = net_2d()
    path = export(net, IN_2D, tmp_path / "grouped2d.onnx")
    out = tmp_path / "fpga"
    art = accelc.compile(path, target="fpga", out=out)
    assert art.manifest["target"]["io_type"] == "io_stream"
    assert art.manifest["self_check"]["passed"] is True
    # The small multiplier-1 depthwise conv stays on the Latency strategy, so it goes to hls4ml's own
    # depthwise layer; the multiplier-2 and grouped convs are expanded (the size heuristic puts the
    # larger of them on Resource, where hls4ml's depthwise layer would be wrong).
    assert firmware(out).count("depthwise_conv_2d") == 1
    assert "Resource" in art.manifest["target"]["layer_strategy"].values()
    x = seeded((N, *IN_2D[1:]), seed=3)
    check_fpga_against_float(art, path, net, x)
    check_per_layer(art, out, x[:4])


@pytest.mark.slow
def test_native_depthwise_in_io_parallel_latency_matches_float(tmp_path) -> None:
    """With strategy=latency the multiplier-1 depthwise conv goes to hls4ml's DepthwiseConv2D, which is
    exact there; the multiplier-2 and grouped convs are still expanded."""
    net = net_2d()
    path = export(net, IN_2D, tmp_path / "grouped2d.onnx")
    out = tmp_path / "fpga"
    art = accelc.compile(path, target="fpga", out=out, options={"io_type": "parallel", "strategy": "latency"})
    assert art.manifest["target"]["io_type"] == "io_parallel"
    assert firmware(out).count("depthwise_conv_2d") == 1
    x = seeded((N, *IN_2D[1:]), seed=4)
    check_fpga_against_float(art, path, net, x)
    check_per_layer(art, out, x[:4])


@pytest.mark.slow
def test_grouped_1d_net_on_fpga_matches_float_and_cpu(tmp_path) -> None:
    net = net_1d()
    path = export(net, IN_1D, tmp_path / "grouped1d.onnx")
    out = tmp_path / "fpga"
    # strategy=resource: hls4ml's depthwise layer is wrong there, so every grouped conv is expanded
    art = accelc.compile(path, target="fpga", out=out, options={"strategy": "resource"})
    assert art.manifest["self_check"]["passed"] is True
    assert "depthwise" not in firmware(out)
    x = seeded((N, *IN_1D[1:]), seed=5)
    check_fpga_against_float(art, path, net, x)
    check_per_layer(art, out, x[:4])
