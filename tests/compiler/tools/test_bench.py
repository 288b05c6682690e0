"""accelc bench: every variant present (or saying why not), ratios consistent with the recorded timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.progress import Progress
from torch import nn

from accelc.tools.bench import bench, to_markdown

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
CPU_VARIANTS = ["torch eager fp32", "ort cpu fp32", "ort cpu int8 static", "ort cpu pruned 50% channels",
                "ort cpu pruned + int8"]


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()


def _check_consistent(result: dict, batches: list[int]) -> None:
    baseline = result["baseline"]
    for b in batches:
        rows = {r["variant"]: r for r in result["rows"] if r["batch"] == b}
        base = rows[baseline]["p50_ms"]
        for row in rows.values():
            if row["status"] == "ok":
                assert row["reps"] >= 5 and row["p90_ms"] >= row["p50_ms"] > 0
                assert row["speedup"] == pytest.approx(base / row["p50_ms"], rel=0.01)
                assert row["throughput_per_s"] == pytest.approx(b / (row["p50_ms"] / 1e3), rel=0.01)
            else:
                assert row["note"], row  # an absent variant says why


def test_bench_runs_every_cpu_variant_and_says_why_cuda_is_absent(tmp_path: Path) -> None:
    result = bench(_mlp(), input_shape=(1, 64), dataset="digits", batches=(1, 8), targets=("cpu", "cuda"),
                   out_dir=tmp_path, progress=Progress(disable=True))
    _check_consistent(result, [1, 8])
    for b in (1, 8):
        names = [r["variant"] for r in result["rows"] if r["batch"] == b]
        assert names[: len(CPU_VARIANTS)] == CPU_VARIANTS and "ort cuda fp32" in names
    rows = {r["variant"]: r for r in result["rows"] if r["batch"] == 1}
    assert result["baseline"] == "torch eager fp32"
    assert rows["ort cpu fp32"]["accuracy"] == pytest.approx(rows["torch eager fp32"]["accuracy"])
    assert rows["ort cpu pruned 50% channels"]["macs"] < rows["ort cpu fp32"]["macs"]
    assert rows["ort cpu int8 static"]["bit_ops"] < rows["ort cpu fp32"]["bit_ops"]
    import onnxruntime as ort

    cuda = rows["ort cuda fp32"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert cuda["status"] == "unavailable" and "CUDAExecutionProvider" in cuda["note"]
    markdown = to_markdown(result)
    assert markdown.count("\n| ") == len(result["rows"]) + 1  # header + one line per row


def test_bench_without_data_lists_int8_as_needing_calibration(tmp_path: Path) -> None:
    result = bench(_mlp(), input_shape=(1, 64), batches=(4,), targets=("cpu",), out_dir=tmp_path,
                   progress=Progress(disable=True))
    rows = {r["variant"]: r for r in result["rows"]}
    assert rows["ort cpu int8 static"]["status"] == "unavailable"
    assert "calibration" in rows["ort cpu int8 static"]["note"]
    assert rows["ort cpu pruned 50% channels"]["status"] == "ok"
    _check_consistent(result, [4])


@pytest.mark.slow
def test_bench_cli_with_fpga_writes_json_and_markdown(tmp_path: Path) -> None:
    model = tmp_path / "mlp.onnx"
    torch.onnx.export(_mlp(), torch.randn(1, 64), model, opset_version=13, dynamo=False)
    script = Path(sys.executable).parent / "accelc"
    proc = subprocess.run([str(script), "bench", str(model), "--dataset", "digits", "--batch", "1,4",
                           "--targets", "cpu,fpga", "-o", str(tmp_path / "variants"), "--json",
                           str(tmp_path / "b.json"), "--markdown", str(tmp_path / "b.md")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["baseline"] == "ort cpu fp32"  # an .onnx source has no torch eager baseline
    _check_consistent(result, [1, 4])
    fpga = [r for r in result["rows"] if r["variant"] == "fpga emulated (C sim)"]
    assert len(fpga) == 2 and all(r["status"] == "ok" for r in fpga)
    assert fpga[0]["compile"] > fpga[0]["compile_warm"]  # cold (empty cache) vs warm
    assert fpga[0]["top1_agreement"] >= 0.95
    assert "fpga emulated" in (tmp_path / "b.md").read_text() and "fpga" in proc.stdout
    assert np.isfinite(fpga[0]["p50_ms"])
