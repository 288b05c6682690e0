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

from accelc.tools.bench import Variant, _rows, bench, to_markdown

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
CPU_VARIANTS = ["torch eager fp32", "ort cpu fp32", "ort cpu int8 static", "ort cpu pruned 50% channels",
                "ort cpu pruned + int8"]


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()


# Rows carry p50_ms rounded to 4 decimals, speed-up to 3 and throughput to 1, all derived from the unrounded
# median: for a median of a few microseconds the p50_ms rounding alone moves a ratio by more than 1%, so a
# fixed relative tolerance is either flaky or too loose. Each figure is checked against the exact range the
# rounded medians allow, widened by the figure's own rounding.
P50_HALF_STEP = 0.5e-4  # p50_ms is rounded to 4 decimals


def _median_range(p50_ms: float) -> tuple[float, float]:
    """The unrounded medians (ms) that round to `p50_ms`; never below 0."""
    return max(p50_ms - P50_HALF_STEP, 0.0), p50_ms + P50_HALF_STEP


def _assert_rounded_within(value: float, lo: float, hi: float, decimals: int) -> None:
    """`value` is some x in [lo, hi] rounded to `decimals` places."""
    slack = 0.5 * 10.0**-decimals + 1e-9 * max(abs(lo), abs(hi), 1.0)  # the rounding, and float error
    assert lo - slack <= value <= hi + slack, (value, lo, hi)


def _check_consistent(result: dict, batches: list[int]) -> None:
    baseline = result["baseline"]
    for b in batches:
        rows = {r["variant"]: r for r in result["rows"] if r["batch"] == b}
        assert rows[baseline]["speedup"] == 1.0  # the baseline against itself: the same median
        base_lo, base_hi = _median_range(rows[baseline]["p50_ms"])
        for row in rows.values():
            if row["status"] == "ok":
                assert row["reps"] >= 5 and row["p90_ms"] >= row["p50_ms"] > 0
                lo, hi = _median_range(row["p50_ms"])
                _assert_rounded_within(row["speedup"], base_lo / hi, base_hi / lo if lo else float("inf"), 3)
                _assert_rounded_within(row["throughput_per_s"], b * 1e3 / hi, b * 1e3 / lo if lo else float("inf"),
                                       1)
            else:
                assert row["note"], row  # an absent variant says why


def test_rows_derive_speedup_and_throughput_from_the_exact_medians() -> None:
    """The formulas themselves, on fixed timings of a few microseconds (where rounding p50_ms shows most)."""
    variants = [Variant("base", "torch", lambda x: x), Variant("fast", "cpu", lambda x: x, macs=10, bits=8),
                Variant("absent", "cpu", None, note="not here")]
    timings = {1: {"base": [2.2149e-6, 2.21e-6, 2.219e-6, 2.20e-6, 2.23e-6],
                   "fast": [0.96e-6, 0.95e-6, 0.97e-6, 0.94e-6, 0.98e-6]},
               8: {"base": [4.0e-5, 4.1e-5, 3.9e-5, 4.2e-5, 4.05e-5],
                   "fast": [1.0e-5, 1.1e-5, 0.9e-5, 1.2e-5, 1.05e-5]}}
    result = _rows(_mlp(), variants, timings, {"fast": {"top1_agreement": 0.98765432}}, (1, 8), None)
    rows = {(r["variant"], r["batch"]): r for r in result["rows"]}
    assert result["baseline"] == "base"
    fast = rows["fast", 1]
    assert rows["base", 1]["p50_ms"] == 0.0022 and fast["p50_ms"] == 0.001 and fast["p90_ms"] == 0.001
    assert fast["speedup"] == 2.307  # 2.2149 / 0.96 µs, not 0.0022 / 0.001 ms from the rounded p50s (5% less)
    assert fast["throughput_per_s"] == round(1 / 0.96e-6, 1) and fast["bit_ops"] == 10 * 8 * 8
    assert fast["top1_agreement"] == 0.987654
    assert rows["base", 1]["speedup"] == 1.0 and rows["base", 8]["speedup"] == 1.0
    assert rows["fast", 8]["speedup"] == round(4.05e-5 / 1.05e-5, 3)
    assert rows["fast", 8]["throughput_per_s"] == round(8 / 1.05e-5, 1)
    assert rows["absent", 8] == {"variant": "absent", "target": "cpu", "batch": 8, "status": "unavailable",
                                 "note": "not here"}
    _check_consistent(result, [1, 8])
    wrong = {**result, "rows": [{**r, "speedup": round(r["speedup"] * 1.01, 3)} if r["variant"] == "fast" else r
                                for r in result["rows"]]}
    with pytest.raises(AssertionError):
        _check_consistent(wrong, [8])  # 1% off is caught from the rounded p50s where they are tens of µs


def _record_timings(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The raw per-call seconds bench derives its rows from, as bench passes them to _rows."""
    import accelc.tools.bench as bench_module

    recorded: dict = {}

    def spy(model, variants, timings, *args):
        recorded.update(timings)
        return _rows(model, variants, timings, *args)

    monkeypatch.setattr(bench_module, "_rows", spy)
    return recorded


def _check_exact(result: dict, timings: dict) -> None:
    """Every figure is the one the recorded timings give: speed-up = baseline median / median, unrounded."""
    for b, times in timings.items():
        base = float(np.median(times[result["baseline"]]))
        for row in (r for r in result["rows"] if r["batch"] == b and r["status"] == "ok"):
            p50 = float(np.median(times[row["variant"]]))
            assert row["p50_ms"] == round(p50 * 1e3, 4) and row["reps"] == len(times[row["variant"]])
            assert row["speedup"] == round(base / p50, 3), row
            assert row["throughput_per_s"] == round(b / p50, 1), row


def test_bench_runs_every_cpu_variant_and_says_why_cuda_is_absent(tmp_path: Path, monkeypatch) -> None:
    timings = _record_timings(monkeypatch)
    result = bench(_mlp(), input_shape=(1, 64), dataset="digits", batches=(1, 8), targets=("cpu", "cuda"),
                   out_dir=tmp_path, progress=Progress(disable=True))
    assert sorted(timings) == [1, 8]
    _check_exact(result, timings)
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


def test_bench_without_data_lists_int8_as_needing_calibration(tmp_path: Path, monkeypatch) -> None:
    timings = _record_timings(monkeypatch)
    result = bench(_mlp(), input_shape=(1, 64), batches=(4,), targets=("cpu",), out_dir=tmp_path,
                   progress=Progress(disable=True))
    rows = {r["variant"]: r for r in result["rows"]}
    assert rows["ort cpu int8 static"]["status"] == "unavailable"
    assert "calibration" in rows["ort cpu int8 static"]["note"]
    assert rows["ort cpu pruned 50% channels"]["status"] == "ok"
    _check_exact(result, timings)
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
