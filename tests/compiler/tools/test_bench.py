"""accelc bench: every variant present (or saying why not), ratios consistent with the recorded timings."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from rich.progress import Progress
from torch import nn

import accelc.tools.bench as bench_module
from accelc.tools.bench import (
    FPGA_CSIM,
    FPGA_ENGINE,
    FPGA_ESTIMATE,
    Variant,
    _rows,
    bench,
    fpga_emulations,
    print_terminal,
    time_variants,
    to_markdown,
)

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
                if row.get("emulation"):  # the fpga emulated on this CPU: no speed-up of the hardware
                    assert row["speedup"] is None, row
                else:
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
            assert row["speedup"] == (None if row.get("emulation") else round(base / p50, 3)), row
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
                          capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["baseline"] == "ort cpu fp32"  # an .onnx source has no torch eager baseline
    _check_consistent(result, [1, 4])
    fpga = [r for r in result["rows"] if r["variant"] in (FPGA_ENGINE, FPGA_CSIM)]
    assert len(fpga) == 4 and all(r["status"] == "ok" for r in fpga)
    assert fpga[0]["compile"] > fpga[0]["compile_warm"]  # cold (empty cache) vs warm
    assert fpga[0]["top1_agreement"] >= 0.95
    assert [r["batch"] for r in result["fpga"]["engine_vs_csim"]] == [1, 4]
    markdown = (tmp_path / "b.md").read_text()
    assert FPGA_ENGINE in markdown and FPGA_CSIM in markdown and f"## {FPGA_ESTIMATE}" in markdown
    assert np.isfinite(fpga[0]["p50_ms"])
    # the terminal at COLUMNS=80: nothing wider, every variant's row whole on one line
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, proc.stdout
    for name in (FPGA_ENGINE, FPGA_CSIM, "ort cpu pruned 50% channels"):
        assert sum(line.startswith(name) for line in lines) == 2, proc.stdout  # batches 1 and 4
    assert any(line.startswith("engine vs C sim: ") for line in lines), proc.stdout


# --- the fpga artifact: engine and C simulation rows, their ratio, the hardware estimate, 80 columns ----------

@pytest.fixture(scope="module")
def fpga_bench(tmp_path_factory) -> tuple[dict, dict, Path]:
    """One bench with fpga (no dataset: the int8 variants are skipped, fewer compiles), its raw timings and
    output directory. A shorter timing budget keeps it quick; every row still has >= MIN_REPS timings."""
    out = tmp_path_factory.mktemp("bench-fpga")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench_module, "TIME_BUDGET_S", 0.3)
        timings = _record_timings(mp)
        result = bench(_mlp(), input_shape=(1, 64), batches=(1, 8), targets=("cpu", "fpga"), out_dir=out,
                       progress=Progress(disable=True))
    return result, dict(timings), out


@pytest.mark.slow
def test_bench_fpga_rows_by_both_engines_with_their_ratio(fpga_bench) -> None:
    result, timings, _ = fpga_bench
    _check_exact(result, timings)
    _check_consistent(result, [1, 8])
    for b in (1, 8):
        rows = {r["variant"]: r for r in result["rows"] if r["batch"] == b}
        engine, csim = rows[FPGA_ENGINE], rows[FPGA_CSIM]
        for row in (engine, csim):
            assert row["status"] == "ok" and row["emulation"] is True and row["speedup"] is None, row
            assert row["target"] == "fpga" and row["compile"] > row["compile_warm"] >= 0
        assert "fpga emulated (C sim)" not in rows  # the one old row is gone: two engines instead
        # bit-exact engines: the same outputs, so the same errors against the float reference
        assert engine["max_abs_err"] == csim["max_abs_err"]
        assert engine["top1_agreement"] == csim["top1_agreement"]
    ratios = result["fpga"]["engine_vs_csim"]
    assert [r["batch"] for r in ratios] == [1, 8]
    for r in ratios:
        e, c = float(np.median(timings[r["batch"]][FPGA_ENGINE])), float(np.median(timings[r["batch"]][FPGA_CSIM]))
        assert r["ratio"] > 0 and r["ratio"] == round(c / e, 3)  # measured in this run, not a threshold
        assert r["engine_ms_per_sample"] == round(e * 1e3 / r["batch"], 6)
        assert r["csim_ms_per_sample"] == round(c * 1e3 / r["batch"], 6)
        engine_row = next(x for x in result["rows"] if x["variant"] == FPGA_ENGINE and x["batch"] == r["batch"])
        assert engine_row["engine_vs_csim"] == r["ratio"]
    assert "no speed-up" in result["fpga"]["emulation"]


@pytest.mark.slow
def test_bench_fpga_hardware_estimate_with_units(fpga_bench) -> None:
    import accelc
    from accelc.hls.cost import estimate

    result, _, out = fpga_bench
    art = accelc.load(out / "fpga")
    cost = estimate(art.path, art.manifest)
    rows = [r for r in result["rows"] if r["variant"] == FPGA_ESTIMATE]
    assert len(rows) == 1  # not timed: one row for every batch
    row = rows[0]
    clock = art.manifest["target"]["clock_period"]
    assert row["status"] == "estimate" and row["batch"] is None and row["clock_period_ns"] == clock
    assert row["latency_cycles"] == cost["totals"]["latency_cycles"] > 0
    assert row["interval_cycles"] == cost["totals"]["interval_cycles"] >= 1
    assert row["latency_us"] == pytest.approx(row["latency_cycles"] * clock / 1e3)
    assert row["interval_us"] == pytest.approx(row["interval_cycles"] * clock / 1e3)
    assert "estimate" in row["note"]
    assert result["fpga"]["hardware_estimate"]["totals"] == cost["totals"]  # the cost model's figures in full
    assert json.loads(json.dumps(result)) == result  # the --json output holds all of it
    markdown = to_markdown(result)
    assert f"## {FPGA_ESTIMATE}" in markdown
    assert f"latency {row['latency_cycles']:,} cycles = {row['latency_us']:.4g} µs at {clock:g} ns clock" in markdown
    assert "| est. latency cycles | est. latency µs | est. interval cycles | clock ns |" in markdown
    for layer in cost["layers"]:
        assert f"| {layer['name']} | {layer['kind']} | {layer['cycles']} |" in markdown
    assert "engine vs C sim: " in markdown


def _render(result: dict, width: int = 80) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, soft_wrap=True)  # as the CLI's stdout
    print_terminal(console, result)
    return console.export_text().splitlines()


@pytest.mark.slow
def test_bench_terminal_table_fits_80_columns(fpga_bench) -> None:
    result, _, _ = fpga_bench
    result = {**result, "model": "/a/long/path/to/the/models/of/some/project/checkpoints/best/mlp-final.onnx"}
    lines = _render(result)
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    assert "…" not in "\n".join(lines)  # no header or cell cut short to fit
    header = next(line for line in lines if line.startswith("variant"))
    assert header.split() == ["variant", "batch", "p50", "ms", "samples/s", "speed-up", "top-1"]
    timed = [r for r in result["rows"] if r["batch"] is not None]
    row_lines = [line for line in lines if any(line.startswith(r["variant"]) for r in timed)]
    assert len(row_lines) == len(timed)  # each row whole on one line, none wrapped
    for line in row_lines:
        if line.startswith((FPGA_ENGINE, FPGA_CSIM)):
            cells = line.split("]", 1)[1].split()  # after the footnote marks: batch, p50, samples/s, top-1
            assert len(cells) == 4, line  # no speed-up for an emulation
    ratios = result["fpga"]["engine_vs_csim"]
    text = "\n".join(lines)
    assert "engine vs C sim: " + ", ".join(f"{r['ratio']:.3g}x at batch {r['batch']}" for r in ratios) in \
        " ".join(text.split())
    estimate = next(r for r in result["rows"] if r["variant"] == FPGA_ESTIMATE)
    flat = " ".join(text.split())
    assert f"{FPGA_ESTIMATE}: latency {estimate['latency_cycles']:,} cycles = {estimate['latency_us']:.4g} µs at " \
        f"{estimate['clock_period_ns']:g} ns clock, initiation interval {estimate['interval_cycles']:,} cycle" in flat
    marks = {int(m) for line in row_lines if "[" in line for m in line.split("[", 1)[1].split("]")[0].split(",")}
    for n in marks:  # every mark has its footnote under the table
        assert any(line.startswith(f"[{n}] ") for line in lines), (n, text)
    assert any(line.startswith("[") and "emulation" in line for line in lines)
    # the check itself can fail: the same rows at 60 columns do not fit on one line each
    narrow = _render(result, 60)
    assert len([line for line in narrow if any(line.startswith(r["variant"]) for r in timed)]) != len(timed) or \
        "…" in "\n".join(narrow)


@pytest.mark.slow
def test_bench_fpga_engine_row_says_why_when_the_engine_cannot_run(fpga_bench, tmp_path: Path) -> None:
    """An artifact the numpy engine does not implement (the manifest says so): its row is unavailable with the
    manifest's reason, the C simulation still runs, and no ratio is claimed."""
    _, _, out = fpga_bench
    copy = tmp_path / "fpga"
    shutil.copytree(out / "fpga", copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    why = "Dense_fc1: product binary (xnor arithmetic) is not reproduced"
    manifest["target"]["engine"] = {"numpy": "unsupported", "why": why}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    variants = [Variant("base", "torch", lambda x: x)] + fpga_emulations(copy, None, {})
    engine, csim = variants[1], variants[2]
    assert engine.name == FPGA_ENGINE and engine.run is None and engine.note == why
    assert csim.name == FPGA_CSIM and csim.run is not None and csim.kind == "emulation"
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench_module, "TIME_BUDGET_S", 0.05)
        timings = {2: time_variants(variants, x, 2, Progress(disable=True))}
    result = _rows(_mlp(), variants, timings, {}, (2,), None)
    rows = {r["variant"]: r for r in result["rows"]}
    assert rows[FPGA_ENGINE]["status"] == "unavailable" and why in rows[FPGA_ENGINE]["note"]
    assert rows[FPGA_CSIM]["status"] == "ok" and rows[FPGA_CSIM]["speedup"] is None
    assert result["fpga"]["engine_vs_csim"] == []
    text = " ".join("\n".join(_render(result)).split())
    assert "engine vs C sim: not measured" in text and f"unavailable: {why}" in text
    assert f"unavailable: {why}" in to_markdown(result)
