"""Compression passes end to end: from the CLI and the API, composed in order, lowered to cpu and fpga."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from _cli import accelc_command
from torch import nn

import accelc
from accelc.reference import Reference

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.pt"


class ConvNet(nn.Module):
    """conv 3->8 -> BN -> relu -> conv 8->8 -> relu -> flatten -> linear: prunable and factorizable."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.bn(self.conv1(x)))))
        return self.fc(x.flatten(1))


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = ConvNet().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net


def _shapes(path: Path) -> dict[str, list[int]]:
    return {i.name: list(i.dims) for i in onnx.load(str(path)).graph.initializer}


def test_cli_channel_pruning_shrinks_the_graph_and_reports_what_it_realised(tmp_path: Path) -> None:
    out = tmp_path / "pruned"
    proc = subprocess.run([*accelc_command(), "compile", str(DIGITS), "--input-shape", "1,1,8,8",
                           "--pass", "prune:mode=channel,ratio=0.5", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "pass prune: channels" in proc.stdout and "MACs 25,408 -> " in proc.stdout
    record = json.loads((out / "manifest.json").read_text())["passes"][0]
    stats = record["stats"]
    assert record["name"] == "prune" and record["options"]["mode"] == "channel"
    assert stats["after"]["macs"] < stats["before"]["macs"] / 2
    assert stats["layers"]["/features/0/Conv"] == {"channels_before": 8, "channels_after": 4, "ratio": 0.5}
    assert "fidelity" in stats and stats["fidelity"]["samples"] > 0
    shapes = _shapes(out / "model.onnx")
    assert [8, 1, 3, 3] not in shapes.values() and [4, 1, 3, 3] in shapes.values()
    # verify compares with the model before pruning: the loss shows, honestly
    proc = subprocess.run([*accelc_command(), "verify", str(out), "--dataset", "digits"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "top-1 agreement" in proc.stdout


def test_cli_shortcuts_and_bad_pass_options(tmp_path: Path) -> None:
    proc = subprocess.run([*accelc_command(), "compile", str(DIGITS), "--input-shape", "1,1,8,8", "--prune", "0.7",
                           "--depthwise", "-o", str(tmp_path / "a")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    passes = json.loads((tmp_path / "a" / "manifest.json").read_text())["passes"]
    assert [p["name"] for p in passes] == ["prune", "depthwise"]
    assert abs(passes[0]["stats"]["sparsity"] - 0.7) <= 0.01
    assert "do not make ONNX Runtime faster" in proc.stderr  # the kind of pruning that will not pay off here
    proc = subprocess.run([*accelc_command(), "compile", str(DIGITS), "--input-shape", "1,1,8,8",
                           "--pass", "prune:sparsity=0.5,exclude=nosuchlayer", "-o", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no prunable layer named 'nosuchlayer'" in proc.stderr
    assert not (tmp_path / "b").exists()


def _check_composed(art, x: np.ndarray, atol: float) -> None:
    names = [p["name"] for p in art.manifest["passes"]]
    assert names == ["prune", "depthwise"]
    dw = art.manifest["passes"][1]["stats"]
    assert dw["layers"]["/conv2/Conv"]["status"] == "rewritten"  # it saw the pruned conv2: 4 -> 4 channels
    assert dw["layers"]["/conv2/Conv"]["macs_before"] == 4 * 4 * 9 * 16
    ops = [n.op_type for n in onnx.load(str(art.path / "model.onnx")).graph.node]
    assert ops.count("Conv") == 3
    lowered = Reference(onnx.load(str(art.path / "model.onnx"))).run([x])[0]
    np.testing.assert_allclose(art.predict(x), lowered, atol=atol, rtol=0)


def _composed_passes() -> list[str]:
    return ["prune:mode=channel,ratio=0.5", "depthwise:tol=0.9,multiplier=1,exclude=conv1"]


def test_prune_then_depthwise_compose_in_order_on_cpu(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((16, 3, 6, 6)).astype(np.float32)
    art = accelc.compile(_net(), target="cpu", input_shape=(1, 3, 6, 6), passes=_composed_passes(), out=tmp_path / "a")
    _check_composed(art, x, atol=1e-5)
    assert art.manifest["passes"][0]["stats"]["layers"]["/conv1/Conv"]["channels_after"] == 4


@pytest.mark.slow
def test_prune_then_depthwise_compose_in_order_on_fpga(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((16, 3, 6, 6)).astype(np.float32)
    art = accelc.compile(_net(), target="fpga", input_shape=(1, 3, 6, 6), passes=_composed_passes(),
                         out=tmp_path / "a")
    _check_composed(art, x, atol=0.05)


def test_cli_int8_static_calibrates_on_the_dataset_and_verify_reports_accuracy(tmp_path: Path) -> None:
    out = tmp_path / "int8"
    proc = subprocess.run([*accelc_command(), "compile", str(DIGITS), "--input-shape", "1,1,8,8", "--quantize", "int8",
                           "--dataset", "digits", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((out / "manifest.json").read_text())["passes"][0]["stats"]
    assert stats["fidelity"]["data"] == "calibration" and [r["batch"] for r in stats["speed"]] == [1, 64]
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "QLinearConv" not in ops
    proc = subprocess.run([*accelc_command(), "verify", str(out), "--dataset", "digits", "--min-agreement", "0.95"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from accelc.data import load_dataset

    art = accelc.load(out)
    x, y = load_dataset("digits", art.inputs, "test")  # held back: calibration used the training split
    report = accelc.verify(art, x, labels=y, per_layer=False)
    assert report.accuracy_artifact >= report.accuracy_reference - 0.01, report
    # without data a static mode is refused, and nothing is written
    proc = subprocess.run([*accelc_command(), "compile", str(DIGITS), "--input-shape", "1,1,8,8", "--quantize", "int8",
                           "-o", str(tmp_path / "none")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "needs calibration data" in proc.stderr
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
def test_fixed8_on_fpga_uses_8_bit_types_and_keeps_digits_accuracy(tmp_path: Path) -> None:
    from accelc.data import load_dataset

    art = accelc.compile(DIGITS, target="fpga", input_shape=(1, 1, 8, 8), passes=["quantize:fixed8"],
                         calibration="digits", out=tmp_path / "fixed8")
    precision = art.manifest["target"]["precision"]
    weights = [p["weight"] for p in precision.values() if "weight" in p]
    assert weights and all(w.startswith("fixed<8,") for w in weights)
    assert all(p["result"].startswith("fixed<8,") for p in precision.values() if p.get("result", "auto") != "auto")
    x, y = load_dataset("digits", art.inputs, "test")
    report = accelc.verify(art, x, labels=y, per_layer=False)
    assert report.accuracy_artifact >= report.accuracy_reference - 0.02, report


def test_int8_dynamic_mlp_is_at_most_30_percent_of_the_float_file(tmp_path: Path) -> None:
    art = accelc.compile(ROOT / "examples" / "mlp" / "mlp.onnx", target="cpu", passes=["quantize:int8-dynamic"],
                         out=tmp_path / "mlp-int8")
    size, float_size = (art.path / "model.onnx").stat().st_size, art.reference_path.stat().st_size
    assert size <= 0.30 * float_size, (size, float_size)
    assert "MatMulInteger" in {n.op_type for n in onnx.load(str(art.path / "model.onnx")).graph.node}


def _no_overflow(art, x: np.ndarray) -> None:
    """fixed16 vs float on 200 inputs: top-1 agreement >= 99%, and no layer saturates (per-layer trace)."""
    report = accelc.verify(art, x, per_layer=True)
    assert report.top1_agreement >= 0.99, report.top1_agreement
    assert report.per_layer and max(row.rel_err for row in report.per_layer) < 0.02, report.per_layer


@pytest.mark.slow
def test_fixed16_digits_and_auto_with_fewer_bits(tmp_path: Path) -> None:
    from accelc.data import load_dataset
    from accelc.transforms.compress.fixed_point_search import bit_ops

    fixed16 = accelc.compile(DIGITS, target="fpga", input_shape=(1, 1, 8, 8), passes=["quantize:fixed16"],
                             calibration="digits", out=tmp_path / "fixed16")
    x, _ = load_dataset("digits", fixed16.inputs, "test")
    _no_overflow(fixed16, x[:200])
    auto = accelc.compile(DIGITS, target="fpga", input_shape=(1, 1, 8, 8), passes=["quantize:auto"],
                          calibration="digits", out=tmp_path / "auto")
    stats = auto.manifest["passes"][0]["stats"]
    model = onnx.load(str(auto.path / "model.onnx"))
    macs = {name: 1 for name in stats["widths"]}
    assert bit_ops(model, stats["widths"], macs, 18) < bit_ops(model, {}, macs, 16)  # fewer bits than fixed16
    assert stats["bit_ops"]["after"] < stats["bit_ops"]["before"] * (16 * 16) / (18 * 18)
    x_calib, _ = load_dataset("digits", auto.inputs, "train")  # its tol, emulated, on the data it was searched on
    assert accelc.verify(auto, x_calib[:256], per_layer=False).top1_agreement >= 0.99
    # The widths were decided on the numpy engine, and what it measures is what the C simulation measures: the
    # digits test split gives the same outputs, bit for bit, so the same accuracy.
    assert stats["decided_by"] == "the fpga lowering run by the bit-exact numpy engine", stats.get("note")
    assert stats["fidelity"]["computed_by"].startswith("the fpga lowering run by the numpy engine")
    x_test, y_test = load_dataset("digits", auto.inputs, "test")
    engine, csim = auto.predict(x_test), accelc.load(auto.path, engine="csim").predict(x_test)
    assert auto.runner.description.startswith("numpy engine")
    assert np.array_equal(engine, csim)
    assert np.mean(engine.argmax(1) == y_test) == np.mean(csim.argmax(1) == y_test) > 0.9


@pytest.mark.slow
def test_fixed16_lenet_has_no_overflow(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((200, 1, 28, 28)).astype(np.float32)
    art = accelc.compile(ROOT / "examples" / "lenet" / "lenet.pt", target="fpga", input_shape=(1, 1, 28, 28),
                         passes=["quantize:fixed16"], calibration=x[:64], out=tmp_path / "lenet16")
    _no_overflow(art, x)


def test_cpu_qdq_model_whose_fused_kernels_are_inexact_runs_unfused_and_says_so(tmp_path: Path) -> None:
    """ONNX Runtime's default u8s8 QDQ (8-bit weights) fuses into int8 kernels that saturate on CPUs without
    VNNI; compile must not hand out an artifact that is off. Either the fused kernels are exact here, or the
    artifact runs the QDQ graph unfused, with a warning — and in both cases it matches the QDQ graph."""
    from onnxruntime.quantization import QuantFormat, quantize_static

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).eval()
    fp32, qdq = tmp_path / "mlp.onnx", tmp_path / "mlp_qdq.onnx"
    torch.onnx.export(net, torch.randn(1, 64), fp32, opset_version=13, dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "n"}})
    calib = np.random.default_rng(0).uniform(0, 4, (64, 64)).astype(np.float32)

    class Reader:
        def __init__(self) -> None:
            self.items = iter([{"x": calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(fp32), str(qdq), Reader(), quant_format=QuantFormat.QDQ)  # u8 activations, s8 weights
    art = accelc.compile(qdq, target="cpu", out=tmp_path / "art", calibration=calib)
    x = calib[:32]
    exact = Reference(onnx.load(str(qdq))).run([x])[0]  # the QDQ graph as written
    np.testing.assert_allclose(art.predict(x), exact, atol=1e-4)
    if art.manifest["target"]["options"].get("qdq_fusion") is False:
        assert any("fused int8 kernels" in w for w in art.manifest["warnings"])
