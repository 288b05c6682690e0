"""End to end through the `accelc` command line (a real subprocess): compile, verify, run, inspect, --help.

The subprocess inherits os.environ, so it uses this session's ACCELC_CACHE_DIR (tests/conftest.py).
COLUMNS=200 keeps rich from wrapping lines in the non-tty pipe.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _cli import accelc_command

import accelc

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MLP_ONNX = EXAMPLES / "mlp" / "mlp.onnx"
LENET_PT = EXAMPLES / "lenet" / "lenet.pt"
DIGITS_PT = EXAMPLES / "digits" / "digits_cnn.pt"


def cli(*args, command: list[str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*(command or accelc_command()), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert "Traceback" not in res.stderr, res.stderr
    return res


def table_value(text: str, label: str) -> float:
    """A figure from a rich table row such as '│ top-1 agreement │ 1.0000 │'."""
    match = re.search(rf"{re.escape(label)}\s*[│|]\s*([-+0-9.eE]+)", text)
    assert match, f"no row {label!r} in:\n{text}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def mlp_cpu(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("cli-mlp") / "mlp-cpu"
    res = cli("compile", "examples/mlp/mlp.onnx", "--target", "cpu", "-o", out)
    return out, res


# --- entry points -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["script", "module"])
def test_help_lists_the_commands(entry: str) -> None:
    command = accelc_command() if entry == "script" else [sys.executable, "-m", "accelc.tools.cli"]
    res = ok(cli("--help", command=command))
    for name in ("compile", "verify", "run", "inspect"):
        assert re.search(rf"\b{name}\b", res.stdout), (name, res.stdout)


def test_no_arguments_shows_usage() -> None:
    res = cli()
    assert "Usage" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr


# --- cpu artifact: compile, verify, run, inspect ------------------------------------------------------------


def test_compile_mlp_for_cpu(mlp_cpu) -> None:
    out, res = mlp_cpu
    ok(res)
    assert "compiled" in res.stdout
    assert res.stderr.strip() == "", res.stderr
    art = accelc.load(out)
    assert art.target == "cpu"
    assert art.manifest["self_check"]["passed"] is True


def test_verify_random_prints_the_figures(mlp_cpu) -> None:
    out, _ = mlp_cpu
    res = ok(cli("verify", out, "--random", "8"))
    for figure in ("max abs error", "RMSE", "cosine", "top-1"):
        assert figure in res.stdout, (figure, res.stdout)
    assert table_value(res.stdout, "max abs error") <= 1e-5
    assert table_value(res.stdout, "top-1 agreement") == 1.0
    assert "8 inputs" in res.stdout


def test_verify_fails_its_threshold_with_exit_1(mlp_cpu) -> None:
    out, _ = mlp_cpu
    res = cli("verify", out, "--random", "8", "--atol", "-1")
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert "verification failed" in res.stderr and "atol" in res.stderr, res.stderr


def test_verify_passes_thresholds_and_writes_json(mlp_cpu, tmp_path) -> None:
    out, _ = mlp_cpu
    report_path = tmp_path / "report.json"
    res = ok(cli("verify", out, "--random", "8", "--atol", "1e-4", "--min-agreement", "1.0",
                 "--json", report_path))
    assert "verification passed" in res.stdout
    report = json.loads(report_path.read_text())
    assert report["passed"] is True and report["samples"] == 8
    assert report["top1_agreement"] == 1.0 and report["max_abs_err"] <= 1e-4


def test_run_writes_what_predict_returns(mlp_cpu, tmp_path) -> None:
    out, _ = mlp_cpu
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    res = ok(cli("run", out, tmp_path / "in.npy", "-o", tmp_path / "out.npy"))
    assert "wrote" in res.stdout
    y = np.load(tmp_path / "out.npy")
    assert y.shape == (3, 10)
    np.testing.assert_array_equal(y, accelc.load(out).predict(x))


def test_inspect_model_lists_ops_params_macs_and_targets() -> None:
    res = ok(cli("inspect", "examples/mlp/mlp.onnx"))
    text = res.stdout
    for word in ("Flatten", "Gemm", "Relu", "params", "MACs", "cpu", "cuda", "fpga"):
        assert word in text, (word, text)
    assert "101,770" in text  # 784*128+128 + 128*10+10 parameters
    assert "101,632" in text  # 784*128 + 128*10 multiply-accumulates
    assert re.search(r"fpga\s*[│|]\s*ok", text), text


def test_inspect_model_shows_what_fpga_refuses(tmp_path) -> None:
    import torch
    from torch import nn

    path = tmp_path / "dilated.onnx"
    net = nn.Sequential(nn.ConvTranspose2d(1, 2, 2, stride=3), nn.Flatten()).eval()
    torch.onnx.export(net, torch.zeros(1, 1, 8, 8), str(path), dynamo=False, opset_version=13,
                      input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    res = cli("inspect", path)
    assert res.returncode == 1, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"  # a node refused
    assert "Traceback" not in res.stderr, res.stderr
    assert re.search(r"fpga\s*[│|]\s*1 node\(s\) refused\s*[│|]\s*ConvTranspose ×1", res.stdout), res.stdout
    assert "strides=[3, 3]" in res.stdout
    assert re.search(r"cpu\s*[│|]\s*ok", res.stdout), res.stdout


def test_inspect_artifact(mlp_cpu) -> None:
    out, _ = mlp_cpu
    res = ok(cli("inspect", out))
    for word in ("target cpu", "sha256", "input", "output", "self-check"):
        assert word in res.stdout, (word, res.stdout)


# --- headline: LeNet (with its log-softmax) for fpga --------------------------------------------------------


@pytest.mark.slow
def test_lenet_for_fpga_compiles_verifies_with_per_layer_table_and_runs(tmp_path) -> None:
    out = tmp_path / "lenet-fpga"
    res = ok(cli("compile", "examples/lenet/lenet.pt", "--target", "fpga", "--input-shape", "1,1,28,28",
                 "-o", out, timeout=600))
    assert "compiled" in res.stdout and "self-check" in res.stdout
    assert (out / "hls" / "firmware" / "myproject.cpp").is_file()

    res = ok(cli("verify", out, "--random", "8"))
    text = res.stdout
    assert "per layer" in text, text
    for node in ("/conv1/Conv", "/conv2/Conv", "/fc2/Gemm", "LogSoftmax"):
        assert node in text, (node, text)
    assert "error jumps here" not in text, text
    assert table_value(text, "top-1 agreement") >= 0.95
    assert table_value(text, "max abs error") < 0.05

    res = ok(cli("inspect", out))
    assert "fpga" in res.stdout and "precision per layer" in res.stdout

    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "in.npy", x)
    ok(cli("run", out, tmp_path / "in.npy", "-o", tmp_path / "out.npy"))
    y = np.load(tmp_path / "out.npy")
    np.testing.assert_array_equal(y, accelc.load(out).predict(x))
    assert np.allclose(np.exp(y).sum(axis=1), 1.0, atol=0.05)  # log-probabilities


# --- the digits CNN on its dataset --------------------------------------------------------------------------


def test_verify_on_the_digits_dataset_reports_accuracy(tmp_path) -> None:
    out = tmp_path / "digits-cpu"
    ok(cli("compile", "examples/digits/digits_cnn.pt", "--input-shape", "1,1,8,8", "-o", out))
    res = ok(cli("verify", out, "--dataset", "digits", "--min-agreement", "0.99"))
    assert table_value(res.stdout, "accuracy (cpu)") >= 0.95
    assert table_value(res.stdout, "accuracy (float reference)") >= 0.95
    assert "verification passed" in res.stdout


# --- regressions: bugs these tests found (fixed in fcf11e5) -------------------------------------------------


def test_compile_prints_a_path_with_brackets_verbatim(tmp_path) -> None:
    src = tmp_path / "mlp[red].onnx"
    shutil.copy(MLP_ONNX, src)
    res = ok(cli("compile", src, "-o", tmp_path / "out[red]"))
    assert str(src) in res.stdout, res.stdout


def test_input_range_and_verify_defaults(tmp_path) -> None:
    """--input-range sizes the ranges without data; verify then draws from that range (another seed), and an
    artifact calibrated on data verifies by default on the sample it keeps, not on N(0,1)."""
    ranged = tmp_path / "ranged"
    res = ok(cli("compile", "examples/mlp/mlp.onnx", "--target", "cpu", "--input-range", "0,4", "-o", ranged))
    assert "declared input range [0, 4]" in res.stdout
    assert "uniform rows in the declared input range" in ok(cli("verify", ranged, "--random", "8")).stdout
    rows = np.random.default_rng(0).uniform(0, 1, (80, *accelc.load(ranged).inputs[0].shape[1:]))
    np.save(tmp_path / "calib.npy", rows.astype(np.float32))
    kept = tmp_path / "kept"
    ok(cli("compile", "examples/mlp/mlp.onnx", "--target", "cpu", "--calibration", tmp_path / "calib.npy",
           "-o", kept))
    res = ok(cli("verify", kept))
    assert "64 inputs: the calibration sample kept in the artifact" in res.stdout, res.stdout
    bad = cli("compile", "examples/mlp/mlp.onnx", "--target", "cpu", "--input-range", "4,0", "-o", tmp_path / "x")
    assert bad.returncode == 2 and "LO < HI" in bad.stderr
