"""End to end, fpga target: nn.Module and .onnx sources lowered by hls4ml and run by its C simulation (g++).

Each emulator build takes 5-15 s, so each compiled artifact is built in ONE test that checks everything about
it (a module-scoped fixture shared by several tests would be built once per pytest-xdist worker). Three builds
in this file; the refusal tests build nothing.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import accelc

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

ROOT = Path(__file__).resolve().parents[2]
MLP_ONNX = ROOT / "examples" / "mlp" / "mlp.onnx"
FPGA_ATOL = 0.05  # fixed point: a few hundredths at most on these tiny nets
N = 32


class TinyConvNet(nn.Module):
    """conv cin->4 3x3, ReLU, maxpool 2, flatten, linear -> 5, optionally log_softmax."""

    def __init__(self, cin: int, side: int, log_softmax: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 4, 3)
        pooled = (side - 2) // 2
        self.fc = nn.Linear(4 * pooled * pooled, 5)
        self.log_softmax = log_softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1)
        x = self.fc(x)
        return F.log_softmax(x, dim=1) if self.log_softmax else x


def seeded(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def torch_out(net: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def forbid_gxx(monkeypatch) -> None:
    """From here on an emulator (re)build fails the test: g++ is accelc.hls.emulate's only subprocess."""
    import accelc.hls.emulate as emulate

    def no_build(*args, **kwargs):
        raise AssertionError(f"the emulator was rebuilt: {args}")

    monkeypatch.setattr(emulate, "subprocess", types.SimpleNamespace(run=no_build))


def forbid_hls4ml(monkeypatch) -> None:
    import accelc.hls.lower as lower

    def no_lowering(*args, **kwargs):
        raise AssertionError("hls4ml lowering started for a model that should have been refused")

    monkeypatch.setattr(lower, "lower_to_hls", no_lowering)


def node_names(artifact_dir: Path) -> set[str]:
    return {n.name for n in onnx.load(str(artifact_dir / "model.onnx")).graph.node}


@pytest.mark.slow
def test_tiny_conv_net_fpga_matches_torch_verifies_per_layer_and_reloads(tmp_path, monkeypatch) -> None:
    torch.manual_seed(0)
    net = TinyConvNet(cin=1, side=8).eval()
    out = tmp_path / "tiny-fpga"
    art = accelc.compile(net, target="fpga", input_shape=(1, 1, 8, 8), out=out)
    assert art.target == "fpga"
    assert art.manifest["self_check"]["passed"] is True

    # Numbers: against torch itself, on 32 seeded inputs.
    x = seeded((N, 1, 8, 8))
    y = art.predict(x)
    ref = torch_out(net, x)
    assert y.shape == ref.shape == (N, 5)
    assert np.max(np.abs(y - ref)) < FPGA_ATOL
    assert np.mean(y.argmax(1) == ref.argmax(1)) >= 0.95
    one = np.asarray(art.predict(x[0]))  # a single sample without its batch dim
    np.testing.assert_array_equal(one.reshape(1, 5), y[:1])

    # Fidelity report with the per-layer table, every row aligned to a node of the artifact's graph.
    report = accelc.verify(art, x)
    assert report.samples == N
    assert report.max_abs_err < FPGA_ATOL
    assert report.top1_agreement >= 0.95
    assert report.per_layer, "no per-layer rows from the hls4ml trace"
    names = node_names(out)
    for row in report.per_layer:
        assert row.onnx_node in names, (row.layer, row.onnx_node, sorted(names))
        assert not row.jump, row
        assert np.isfinite(row.max_abs_err) and row.max_abs_err < FPGA_ATOL
    assert report.first_jump is None
    traced_ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node
                  if n.name in {row.onnx_node for row in report.per_layer}}
    assert {"Conv", "LogSoftmax"} <= traced_ops, traced_ops

    # The artifact holds the complete hls4ml project.
    assert (out / "manifest.json").is_file() and (out / "model.onnx").is_file()
    assert (out / "hls" / "firmware" / "myproject.cpp").is_file()
    assert (out / "hls" / "build_lib.sh").is_file()
    assert art.manifest["target"]["io_type"] in ("io_parallel", "io_stream")

    # Reloading and recompiling use the cached emulator: no g++ from here on.
    forbid_gxx(monkeypatch)
    again = accelc.load(out)
    np.testing.assert_array_equal(again.predict(x), y)
    recompiled = accelc.compile(net, target="fpga", input_shape=(1, 1, 8, 8), out=out)
    assert recompiled.manifest["cache_key"] == art.manifest["cache_key"]
    np.testing.assert_array_equal(recompiled.predict(x), y)


@pytest.mark.slow
def test_three_channel_input_is_taken_in_nchw(tmp_path) -> None:
    torch.manual_seed(1)
    net = TinyConvNet(cin=3, side=6, log_softmax=False).eval()
    art = accelc.compile(net, target="fpga", input_shape=(1, 3, 6, 6), out=tmp_path / "rgb-fpga")
    assert art.inputs[0].shape == (1, 3, 6, 6) and art.inputs[0].layout == "NCHW"
    x = seeded((N, 3, 6, 6), seed=1)
    ref = torch_out(net, x)
    y = art.predict(x)
    assert np.max(np.abs(y - ref)) < FPGA_ATOL
    # The check above can tell layouts apart: channels-last data read as NCHW gives other numbers.
    scrambled = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(x.shape)
    assert np.max(np.abs(torch_out(net, scrambled) - ref)) > 10 * FPGA_ATOL
    # Channels-last input is refused rather than silently misread.
    with pytest.raises(accelc.AccelcError, match="NCHW"):
        art.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))


@pytest.mark.slow
def test_mlp_example_onnx_compiles_for_fpga_and_agrees(tmp_path) -> None:
    art = accelc.compile(MLP_ONNX, target="fpga", out=tmp_path / "mlp-fpga")
    x = seeded((N, 1, 28, 28), seed=2)
    sess = ort.InferenceSession(str(MLP_ONNX), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    y = art.predict(x)
    assert y.shape == ref.shape == (N, 10)
    assert np.max(np.abs(y - ref)) < FPGA_ATOL
    assert np.mean(y.argmax(1) == ref.argmax(1)) >= 0.95
    report = accelc.verify(art, x, atol=FPGA_ATOL, min_agreement=0.95)
    assert report.passed, report.violations
    assert report.per_layer and report.first_jump is None


# --- refusals: found before any hls4ml work, every offending node listed (no emulator builds) ---------------


class RefusedNet(nn.Module):
    """A ConvTranspose whose stride exceeds its kernel (its zero-insertion rewrite would need a crop: refused),
    optionally then a dilated MaxPool."""

    def __init__(self, dilated_pool: bool = False) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(1, 2, 2, stride=3)
        self.pool = nn.MaxPool2d(2, dilation=2) if dilated_pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.deconv(x)
        if self.pool is not None:
            x = self.pool(x)
        return x.flatten(1)


def test_strided_conv_transpose_is_refused_before_any_hls4ml_work(tmp_path, monkeypatch) -> None:
    forbid_hls4ml(monkeypatch)
    forbid_gxx(monkeypatch)
    out = tmp_path / "deconv-fpga"
    with pytest.raises(accelc.UnsupportedOpError) as info:
        accelc.compile(RefusedNet().eval(), target="fpga", input_shape=(1, 1, 8, 8), out=out)
    err = info.value
    assert err.target == "fpga"
    assert len(err.unsupported) == 1
    u = err.unsupported[0]
    assert u.op == "ConvTranspose" and u.node and "strides=[3, 3]" in u.reason
    message = str(err)
    for part in ("ConvTranspose", u.node, "strides", "fpga"):
        assert part in message, (part, message)
    assert not out.exists(), "a refused compile must not write an artifact"
    assert not any(out.parent.iterdir()), list(out.parent.iterdir())  # no temporary sibling left either


def test_every_unsupported_node_is_listed(tmp_path, monkeypatch) -> None:
    forbid_hls4ml(monkeypatch)
    with pytest.raises(accelc.UnsupportedOpError) as info:
        accelc.compile(RefusedNet(dilated_pool=True).eval(), target="fpga", input_shape=(1, 1, 8, 8),
                       out=tmp_path / "two-fpga")
    err = info.value
    assert len(err.unsupported) == 2, err.unsupported
    nodes = [u.node for u in err.unsupported]
    assert len(set(nodes)) == 2 and all(nodes), nodes
    reasons = " ".join(u.reason for u in err.unsupported)
    assert "strides" in reasons and "dilations" in reasons, reasons
    message = str(err)
    assert all(node in message for node in nodes), message
    assert "2 node(s)" in message, message


# --- known bug ----------------------------------------------------------------------------------------------


def test_relowering_the_same_model_reuses_its_emulator_build(tmp_path, monkeypatch) -> None:
    import accelc.hls.emulate as emulate
    import accelc.hls.lower as lower

    def hash_only(project_dir: Path, opt_flag: str = emulate.DEFAULT_OPT_FLAG):
        # No g++: only the content key under which the emulator would be built and cached.
        key = emulate.project_hash(project_dir, opt_flag)
        return emulate.EmulatorBuild(project_dir / "not-built.so", 0.0, False, key)

    monkeypatch.setattr(lower, "build_emulator", hash_only)
    torch.manual_seed(2)
    net = TinyConvNet(cin=1, side=8).eval()
    keys = []
    for name in ("first", "second"):
        art = accelc.compile(net, target="fpga", input_shape=(1, 1, 8, 8), out=tmp_path / name,
                             self_check="off", force=True)
        keys.append(art.manifest["target"]["emulator"]["key"])
    assert keys[0] == keys[1], "identical hls4ml projects got different emulator cache keys"
