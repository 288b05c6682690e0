"""Bad inputs through the `accelc` command line: exit code 2 and ONE line on stderr, 'accelc: error: ...',
naming what is wrong and what to do, never a traceback (a refusal of many nodes: that summary line, then one
short line per op and reason, capped to a screenful). And a failing compile never harms a good artifact.

The subprocess inherits os.environ, so it uses this session's ACCELC_CACHE_DIR (tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from _cli import accelc_command
from torch import nn

import accelc

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

ROOT = Path(__file__).resolve().parents[2]
MLP_ONNX = ROOT / "examples" / "mlp" / "mlp.onnx"
LENET_PT = ROOT / "examples" / "lenet" / "lenet.pt"
HAS_CUDA_PROVIDER = "CUDAExecutionProvider" in ort.get_available_providers()

PICKLED_NET_SOURCE = '''
import torch
from torch import nn


class PickledNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return torch.relu(self.fc(x))
'''


def cli(*args, extra_env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", **(extra_env or {})}
    return subprocess.run([*accelc_command(), *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def input_error(res: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, one stderr line starting 'accelc: error:' holding every needle, and no traceback."""
    shown = f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert "Traceback" not in res.stderr + res.stdout, shown
    assert res.returncode == 2, shown
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, shown
    line = lines[0]
    assert line.startswith("accelc: error:"), shown
    for needle in needles:
        assert needle in line, (needle, line)
    return line


@pytest.fixture(scope="module")
def mlp_cpu(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad-mlp") / "mlp-cpu"
    res = cli("compile", MLP_ONNX, "--target", "cpu", "-o", out)
    assert res.returncode == 0, res.stderr
    return out


# --- model files --------------------------------------------------------------------------------------------


def test_missing_file(tmp_path) -> None:
    input_error(cli("compile", tmp_path / "nope.onnx"), "no such file", "nope.onnx")


def test_wrong_extension(tmp_path) -> None:
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    input_error(cli("compile", path), "model.h5", ".onnx", ".pt")


def test_truncated_torchscript(tmp_path) -> None:
    data = LENET_PT.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    input_error(cli("compile", path, "--input-shape", "1,1,28,28"), "truncated.pt")


def test_corrupt_onnx(tmp_path) -> None:
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    input_error(cli("compile", path), "corrupt.onnx", "ONNX")


def test_state_dict_is_weights_only(tmp_path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(nn.Linear(6, 3).state_dict(), path)
    input_error(cli("compile", path, "--input-shape", "1,6"), "weights.pt", "state_dict")


def test_pickled_module_needs_trust_pickle_and_then_compiles(tmp_path) -> None:
    helper_dir = tmp_path / "helper"
    helper_dir.mkdir()
    (helper_dir / "e2e_pickled_net.py").write_text(PICKLED_NET_SOURCE)
    make = ("import numpy as np, torch, e2e_pickled_net as m\n"
            "torch.manual_seed(0)\n"
            "net = m.PickledNet().eval()\n"
            "torch.save(net, 'full.pt')\n"
            "x = torch.randn(4, 6)\n"
            "np.save('x.npy', x.numpy())\n"
            "np.save('y.npy', net(x).detach().numpy())\n")
    made = subprocess.run([sys.executable, "-c", make], cwd=helper_dir, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(helper_dir)}, timeout=120)
    assert made.returncode == 0, made.stderr
    model = helper_dir / "full.pt"
    paths = (str(helper_dir), os.environ.get("PYTHONPATH"))
    path_env = {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}

    refused = tmp_path / "refused"
    input_error(cli("compile", model, "--input-shape", "1,6", "-o", refused, extra_env=path_env),
                "full.pt", "--trust-pickle")
    assert not refused.exists()

    out = tmp_path / "trusted"
    res = cli("compile", model, "--input-shape", "1,6", "--trust-pickle", "-o", out, extra_env=path_env)
    assert res.returncode == 0, res.stderr
    assert "compiled" in res.stdout
    art = accelc.load(out)
    assert art.manifest["source"]["kind"] == "pickled nn.Module"
    np.testing.assert_allclose(art.predict(np.load(helper_dir / "x.npy")), np.load(helper_dir / "y.npy"),
                               atol=1e-5, rtol=0)


def test_torchscript_without_input_shape() -> None:
    input_error(cli("compile", LENET_PT), "--input-shape")




@pytest.mark.parametrize("shape", ["1,x", "0,1,28,28", "", ";"])
def test_bad_input_shape_text(shape: str, tmp_path) -> None:
    line = input_error(cli("compile", MLP_ONNX, "--input-shape", shape, "-o", tmp_path / "out"))
    assert "shape" in line


def test_unknown_target(tmp_path) -> None:
    input_error(cli("compile", MLP_ONNX, "--target", "tpu", "-o", tmp_path / "out"), "tpu", "cpu", "fpga")


def test_fpga_refusal_through_the_cli(tmp_path) -> None:
    path = tmp_path / "dilated.onnx"
    net = nn.Sequential(nn.ConvTranspose2d(1, 2, 2, stride=3), nn.Flatten()).eval()
    torch.onnx.export(net, torch.zeros(1, 1, 8, 8), str(path), dynamo=False, opset_version=13,
                      input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    input_error(cli("compile", path, "--target", "fpga", "-o", tmp_path / "out"), "ConvTranspose", "strides", "fpga")


UNARY = ["sin", "tan", "acos", "asin", "atan", "erf", "round", "floor", "ceil", "sign", "reciprocal", "log", "sqrt",
         "abs", "neg", "exp"]  # none lowered to hls4ml: with the 12 Cos, 17 groups, more than a screenful holds


class ManyRefusals(nn.Module):
    """12 `torch.cos`, then one of each unary op in UNARY, then a Linear: 28 nodes fpga refuses, 17 (op, reason)s."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        for _ in range(12):
            x = torch.cos(x)
        for op in UNARY:
            x = getattr(torch, op)(x)
        return self.fc(x)


@pytest.fixture(scope="module")
def many_refusals(tmp_path_factory) -> tuple[Path, list[str]]:
    """The exported model and the name of every node fpga refuses (as the TorchScript exporter names them)."""
    path = tmp_path_factory.mktemp("many-refusals") / "many.onnx"
    torch.onnx.export(ManyRefusals().eval(), torch.zeros(1, 8), str(path), dynamo=False, opset_version=13,
                      input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    names = ["/Cos"] + [f"/Cos_{i}" for i in range(1, 12)] + [f"/{op.capitalize()}" for op in UNARY]
    return path, names


def test_a_refusal_of_many_nodes_is_a_short_grouped_message(many_refusals, tmp_path) -> None:
    path, names = many_refusals
    res = cli("compile", path, "--target", "fpga", "-o", tmp_path / "out")
    shown = f"exit {res.returncode}\nstderr:\n{res.stderr}"
    assert res.returncode == 2 and "Traceback" not in res.stderr, shown
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith(f"accelc: error: {len(names)} node(s) cannot be lowered to target 'fpga' "
                               "(Cos ×12, Sin ×1, "), shown
    assert lines[1].startswith("  Cos ×12: /Cos, /Cos_1, /Cos_2 … (+9) — operator not lowered to hls4ml (hint: "), shown
    assert all(ln.startswith("  ") for ln in lines[1:]), shown
    assert len(lines) <= 1 + 15 + 1, shown  # summary, at most 15 groups, the count of the rest
    assert lines[-1].endswith("… and 2 more group(s) of 2 node(s); `accelc inspect MODEL --target fpga` "
                              "lists every node"), shown
    assert "/Cos_11" not in res.stderr and len(res.stderr) < 2500, shown  # was one line of ~4,000 characters
    assert not (tmp_path / "out").exists()


def test_inspect_lists_every_refused_node_and_exits_1(many_refusals) -> None:
    path, names = many_refusals
    res = cli("inspect", path, "--target", "fpga")
    shown = f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert res.returncode == 1 and "Traceback" not in res.stderr, shown
    assert "28 node(s) refused" in res.stdout, shown
    assert all(name in res.stdout for name in names), shown
    assert "(+" not in res.stdout and "more group" not in res.stdout, shown
    assert "Exits 1 when" in cli("inspect", "--help").stdout


def test_debug_lists_every_refused_node(many_refusals, tmp_path) -> None:
    path, names = many_refusals
    res = cli("--debug", "compile", path, "--target", "fpga", "-o", tmp_path / "out")
    assert res.returncode != 0 and "Traceback" in res.stderr, res.stderr
    assert all(name in res.stderr for name in names), res.stderr


# --- artifacts and data -------------------------------------------------------------------------------------


def test_verify_a_directory_that_is_not_an_artifact(tmp_path) -> None:
    (tmp_path / "something.txt").write_text("not an artifact")
    input_error(cli("verify", tmp_path, "--random", "4"), "not an accelc artifact")


def test_run_with_an_input_of_the_wrong_shape(mlp_cpu, tmp_path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 5), dtype=np.float32))
    input_error(cli("run", mlp_cpu, tmp_path / "bad.npy", "-o", tmp_path / "out.npy"), "shape", "28")
    assert not (tmp_path / "out.npy").exists()


def test_run_with_a_missing_input_file(mlp_cpu, tmp_path) -> None:
    input_error(cli("run", mlp_cpu, tmp_path / "missing.npy"), "missing.npy")


def test_verify_with_an_unknown_dataset(mlp_cpu) -> None:
    input_error(cli("verify", mlp_cpu, "--dataset", "imagenet"), "imagenet", "digits")


# --- cuda on a machine without the CUDA provider ------------------------------------------------------------


@pytest.mark.skipif(HAS_CUDA_PROVIDER, reason="this machine has ONNX Runtime's CUDA provider")
def test_cuda_without_the_provider_names_onnxruntime_gpu(tmp_path) -> None:
    out = tmp_path / "cuda"
    res = cli("compile", MLP_ONNX, "--target", "cuda", "-o", out)
    input_error(res, "onnxruntime-gpu", "--allow-fallback")
    assert not out.exists()


@pytest.mark.skipif(HAS_CUDA_PROVIDER, reason="this machine has ONNX Runtime's CUDA provider")
def test_cuda_with_allow_fallback_warns_and_runs_on_cpu(tmp_path) -> None:
    out = tmp_path / "cuda-fallback"
    res = cli("compile", MLP_ONNX, "--target", "cuda", "--allow-fallback", "-o", out)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "error" not in res.stderr, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "warning" in ln]
    assert warnings and all("CPU" in ln for ln in warnings), res.stderr
    assert "compiled" in res.stdout
    art = accelc.load(out)
    assert art.target == "cuda" and art.manifest["target"]["fallback"] is True
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    cpu = ort.InferenceSession(str(MLP_ONNX), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(art.predict(x), cpu.run(None, {cpu.get_inputs()[0].name: x})[0], atol=1e-5)


# --- a failing compile leaves the good artifact alone -------------------------------------------------------


def test_failing_compile_keeps_the_existing_artifact(tmp_path) -> None:
    out = tmp_path / "keep"
    res = cli("compile", MLP_ONNX, "--target", "cpu", "-o", out)
    assert res.returncode == 0, res.stderr
    manifest = (out / "manifest.json").read_text()
    x = np.random.default_rng(3).standard_normal((2, 1, 28, 28)).astype(np.float32)
    before = accelc.load(out).predict(x)

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(os.urandom(2048))
    input_error(cli("compile", corrupt, "--target", "cpu", "-o", out), "corrupt.onnx")
    dilated = tmp_path / "dilated.onnx"
    torch.onnx.export(nn.Sequential(nn.ConvTranspose2d(1, 2, 2, stride=3), nn.Flatten()).eval(),
                      torch.zeros(1, 1, 28, 28), str(dilated), dynamo=False, opset_version=13)
    input_error(cli("compile", dilated, "--target", "fpga", "-o", out), "strides")

    assert (out / "manifest.json").read_text() == manifest
    np.testing.assert_array_equal(accelc.load(out).predict(x), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.onnx", "dilated.onnx", "keep"]


# --- regressions: bugs these tests found (fixed in fcf11e5) -------------------------------------------------


def test_missing_file_with_brackets_in_its_name(tmp_path) -> None:
    input_error(cli("compile", tmp_path / "model[/x].onnx"), "no such file")


@pytest.mark.parametrize("victim", ["user-directory", "source-model"])
def test_output_path_that_is_not_an_artifact_is_never_replaced(victim: str, tmp_path) -> None:
    if victim == "user-directory":
        out = tmp_path / "notes"
        out.mkdir()
        (out / "keep.txt").write_text("precious")
        model = MLP_ONNX
        res = cli("compile", model, "--target", "cpu", "-o", out)
        assert (out / "keep.txt").read_text() == "precious", "the user's file was deleted"
    else:
        model = tmp_path / "model.onnx"
        shutil.copy(MLP_ONNX, model)
        res = cli("compile", model, "--target", "cpu", "-o", model)
        assert model.is_file(), "the source model was replaced by a directory"
    input_error(res)


@pytest.mark.parametrize(("option", "name"), [("--io-type", "io_type"), ("--strategy", "strategy"),
                                              ("--fpga-backend", "backend")])
def test_unknown_fpga_option_is_refused_before_any_build(option: str, name: str, tmp_path) -> None:
    out = tmp_path / "out"
    input_error(cli("compile", MLP_ONNX, "--target", "fpga", option, "bogus", "-o", out), "bogus", name)
    assert not out.exists()


@pytest.mark.slow
def test_an_artifact_that_failed_its_self_check_is_not_served_to_a_strict_compile(tmp_path) -> None:
    torch.manual_seed(0)
    model = tmp_path / "tiny.onnx"
    torch.onnx.export(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).eval(), torch.zeros(1, 6),
                      str(model), dynamo=False, opset_version=13, input_names=["input"],
                      dynamic_axes={"input": {0: "batch"}})
    args = ("compile", model, "--target", "fpga", "--precision", "fixed<4,1>")  # far too few bits: fails
    kept = cli(*args, "--self-check", "warn", "-o", tmp_path / "kept")
    assert kept.returncode == 0 and "FAILED" in kept.stdout, (kept.stdout, kept.stderr)
    for out in (tmp_path / "kept", tmp_path / "fresh"):
        res = cli(*args, "-o", out)
        assert "Traceback" not in res.stderr, res.stderr
        assert res.returncode == 1, f"-o {out.name}: exit {res.returncode}\n{res.stdout}{res.stderr}"
