"""`accelc bench`: every variant of a model timed side by side in one process, on the same inputs.

Variants: torch eager fp32 (the baseline, when the source is torch), ONNX Runtime cpu fp32 / int8 static /
50% channel-pruned / pruned + int8, the fpga artifact run two ways (the numpy engine and hls4ml's C
simulation: both are emulations on this CPU, so they get no speed-up, but their ratio is reported) with the
hardware's estimated latency and interval (accelc.hls.cost), and cuda when its provider is there. A variant
that cannot run says why in its row; none is left out silently. Timing is interleaved round by round, so
machine noise hits every variant alike; warm-up calls are not counted.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from accelc.errors import AccelcError
from accelc.metrics import accuracy, is_classifier, max_abs_err, top1_agreement
from accelc.tools.bench_table import (  # noqa: F401 - the table's names, re-exported for the CLI and tests
    COLUMNS,
    EMULATION_NOTE,
    FPGA_CSIM,
    FPGA_ENGINE,
    FPGA_ESTIMATE,
    TERMINAL_COLUMNS,
    cell,
    print_terminal,
    to_markdown,
)

TIME_BUDGET_S = 1.5  # per variant and batch size: repetitions = budget / one call, clamped
MIN_REPS, MAX_REPS, WARMUP = 5, 200, 5
SAMPLES = 256  # inputs for fidelity when no dataset is given


@dataclass
class Variant:
    name: str
    target: str
    run: Callable[[np.ndarray], np.ndarray] | None  # None: unavailable
    note: str = ""
    size_bytes: int | None = None
    macs: int | None = None
    bits: int = 32  # operand width, for bit-ops
    compile_s: dict = field(default_factory=dict)
    # "measured" (a speed on this machine), "emulation" (the fpga design run on this CPU: no speed-up) or
    # "estimate" (the fpga hardware's figures from the cost model: not timed, one row for all batches)
    kind: str = "measured"
    estimate: dict | None = None  # kind "estimate": accelc.hls.cost.estimate's result



def _macs(path: Path) -> int:
    import onnx_ir as ir

    from accelc.analysis import analyze

    return sum(info.macs for info in analyze(ir.load(path)))


def _artifact_variant(name: str, art, bits: int, macs: int | None) -> Variant:
    model = art.path / "model.onnx"
    run = _ort_without_spinning(art) if art.target in ("cpu", "cuda") else art.predict
    return Variant(name, art.target, run, size_bytes=model.stat().st_size,
                   macs=macs if macs is not None else _macs(model), bits=bits)


def _ort_without_spinning(art) -> Callable[[np.ndarray], np.ndarray]:
    """The artifact's session, but with ORT's idle threads not spinning: on a 2-core machine spinning
    ORT threads starve the torch variant timed right after (measured: 0.12 ms -> 107 ms per call)."""
    import onnxruntime as ort

    from accelc.reference import run_batched
    from accelc.sessions import target_session_options

    opts = target_session_options(art.manifest["target"].get("options", {}))
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = art.runner.session.get_providers()
    sess = ort.InferenceSession(str(art.path / "model.onnx"), opts, providers=providers)
    name = sess.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        # as_inputs: the source layout in (an absorbed NHWC input is transposed), fixed-batch models too
        return run_batched(sess, {name: art.as_inputs(x)[0]})[0]

    return run


def _compile(progress, label: str, **kwargs):
    import accelc

    progress.log(f"compiling {label} ...")
    start = time.perf_counter()
    art = accelc.compile(**kwargs)
    return art, time.perf_counter() - start


def build_variants(model: Any, input_shape, calibration, out_dir: Path, targets: set[str], progress) -> list[Variant]:
    """Compile every variant; a variant that fails to build becomes a row that says why."""
    import onnxruntime as ort

    variants: list[Variant] = []
    common = {"source": model, "input_shape": input_shape}
    torch_fn = _torch_eager(model)
    if torch_fn is not None:
        variants.append(Variant("torch eager fp32", "torch", torch_fn, bits=32))
    fp32, _ = _compile(progress, "cpu fp32", target="cpu", out=out_dir / "cpu-fp32", **common)
    variants.append(_artifact_variant("ort cpu fp32", fp32, 32, None))
    dense_macs = variants[-1].macs
    plans = [("ort cpu int8 static", ["quantize:int8"], 8, dense_macs),
             ("ort cpu pruned 50% channels", ["prune:mode=channel,ratio=0.5"], 32, None),
             ("ort cpu pruned + int8", ["prune:mode=channel,ratio=0.5", "quantize:int8"], 8, "pruned")]
    pruned_macs = None
    for name, passes, bits, macs in plans:
        if "quantize:int8" in passes and calibration is None:
            variants.append(Variant(name, "cpu", None, note="needs calibration data (--dataset or --calibration)"))
            continue
        try:
            art, _ = _compile(progress, name, target="cpu", out=out_dir / name.replace(" ", "-"),
                                    passes=passes, calibration=calibration, **common)
        except AccelcError as e:
            variants.append(Variant(name, "cpu", None, note=str(e).splitlines()[0]))
            continue
        stats = art.manifest["passes"][0]["stats"]
        if passes[0].startswith("prune"):
            pruned_macs = stats["after"]["macs"]
        variant_macs = pruned_macs if macs == "pruned" else macs  # a QDQ graph has no constant weights to count
        variants.append(_artifact_variant(name, art, bits, variant_macs))
    if "cuda" in targets:
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            variants.append(Variant("ort cuda fp32", "cuda", None,
                                    note=f"CUDAExecutionProvider not available (onnxruntime {ort.__version__})"))
        else:
            art, _ = _compile(progress, "cuda fp32", target="cuda", out=out_dir / "cuda-fp32", **common)
            variants.append(_artifact_variant("ort cuda fp32", art, 32, dense_macs))
    if "fpga" in targets:
        variants.extend(_fpga_variants(common, calibration, out_dir, progress, dense_macs))
    return variants


def _fpga_variants(common: dict, calibration, out_dir: Path, progress, macs: int) -> list[Variant]:
    """The fpga artifact, compiled once with an empty cache (cold) and once more (warm: served from the cache),
    then run by the numpy engine and by the C simulation, plus its hardware estimate."""
    previous = os.environ.get("ACCELC_CACHE_DIR")
    try:
        with tempfile.TemporaryDirectory() as cold_cache:
            os.environ["ACCELC_CACHE_DIR"] = cold_cache
            art, cold = _compile(progress, "fpga (cold cache)", target="fpga", out=out_dir / "fpga",
                                 calibration=calibration, force=True, **common)
    except AccelcError as e:
        why = str(e).splitlines()[0]
        return [Variant(name, "fpga", None, note=why, kind=kind) for name, kind in
                ((FPGA_ENGINE, "emulation"), (FPGA_CSIM, "emulation"), (FPGA_ESTIMATE, "estimate"))]
    finally:
        if previous is None:
            os.environ.pop("ACCELC_CACHE_DIR", None)
        else:
            os.environ["ACCELC_CACHE_DIR"] = previous
    art, warm = _compile(progress, "fpga (warm)", target="fpga", out=out_dir / "fpga", calibration=calibration,
                         **common)
    return fpga_emulations(art.path, macs, {"compile": round(cold, 3), "compile_warm": round(warm, 3)}) + \
        [fpga_estimate(art)]


def fpga_emulations(path: Path, macs: int | None, compile_s: dict) -> list[Variant]:
    """The fpga artifact at `path` run by the numpy engine and by hls4ml's C simulation: two emulation rows.
    The engine's row is unavailable (saying why, from the manifest) where it does not implement the artifact."""
    import accelc

    csim = accelc.load(path, engine="csim")
    target = csim.manifest["target"]
    width = target.get("fixed_width") or 18
    note = f"fixed-point {width}-bit, {target['multipliers']['total']:,} multipliers"
    if compile_s:
        note += (f"; compiled once for both runs ({compile_s['compile']:.2f} s cold cache, "
                 f"{compile_s['compile_warm']:.2f} s warm)")
    record = target.get("engine") or {}
    engine: Variant
    if record.get("numpy") != "ok":
        why = record.get("why") or f"the manifest records the numpy engine as {record.get('numpy', 'absent')!r}"
        engine = Variant(FPGA_ENGINE, "fpga", None, note=why)
    else:
        try:
            engine = _artifact_variant(FPGA_ENGINE, accelc.load(path, engine="numpy"), width, macs)
        except AccelcError as e:
            engine = Variant(FPGA_ENGINE, "fpga", None, note=str(e).splitlines()[0])
        else:
            engine.run = _one_blas_thread(engine.run)
    variants = [engine, _artifact_variant(FPGA_CSIM, csim, width, macs)]
    for v in variants:
        v.kind = "emulation"
        if v.run is not None:
            v.compile_s, v.note = dict(compile_s), note
    return variants


def _one_blas_thread(run: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """`run` with numpy's BLAS on one thread, as the C simulation runs on one core. Interleaved after a C
    simulation call, a sleeping BLAS worker thread costs the engine's next call tens of ms on a loaded 2-core
    machine (measured: 0.6 ms -> 35 ms at batch 64), which would time the scheduler, not the engine."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()

    def limited(x: np.ndarray) -> np.ndarray:
        with controller.limit(limits=1, user_api="blas"):
            return run(x)

    return limited


def fpga_estimate(art) -> Variant:
    """The fpga hardware's figures from accelc's cost model (not timed, not synthesised)."""
    from accelc.hls.cost import estimate

    try:
        cost = estimate(art.path, art.manifest)
    except AccelcError as e:
        return Variant(FPGA_ESTIMATE, "fpga", None, note=str(e).splitlines()[0], kind="estimate")
    return Variant(FPGA_ESTIMATE, "fpga", None, note=cost.get("note", ""), kind="estimate", estimate=cost)


def _torch_eager(model: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """The source as torch runs it: an nn.Module, or a TorchScript file (never unpickles anything)."""
    import torch

    if isinstance(model, torch.nn.Module):
        module = model.eval()
    elif isinstance(model, (str, os.PathLike)) and Path(model).suffix in (".pt", ".pth"):
        try:
            module = torch.jit.load(str(model), map_location="cpu").eval()
        except Exception:  # not TorchScript (e.g. a pickled module): no eager baseline from a file
            return None
    else:
        return None

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    return run


def time_variants(variants: list[Variant], x: np.ndarray, batch: int, progress) -> dict[str, list[float]]:
    """Seconds per call of each runnable variant on the same batch, interleaved round by round."""
    from accelc.timing import interleaved, warm_up

    xb = np.resize(x, (batch, *x.shape[1:])).astype(np.float32)
    calls = {v.name: (lambda run=v.run: run(xb)) for v in variants if v.run is not None}
    one = warm_up(calls, WARMUP)
    reps = {name: int(np.clip(TIME_BUDGET_S / max(t, 1e-6), MIN_REPS, MAX_REPS)) for name, t in one.items()}
    task = progress.add_task(f"timing batch {batch}", total=sum(reps.values()))
    times = interleaved(calls, reps, on_call=lambda: progress.advance(task))
    progress.remove_task(task)
    return times


def fidelity(variants: list[Variant], x: np.ndarray, labels: np.ndarray | None, reference: np.ndarray) -> dict:
    out = {}
    for v in variants:
        if v.run is None:
            continue
        y = np.asarray(v.run(x)).reshape(reference.shape)
        row: dict[str, Any] = {"max_abs_err": max_abs_err(reference, y)}
        if is_classifier(reference):
            row["top1_agreement"] = top1_agreement(reference, y)
            if labels is not None:
                row["accuracy"] = accuracy(y, labels)
        out[v.name] = row
    return out


def bench(model: Any, input_shape=None, dataset: str | None = None, calibration: np.ndarray | None = None,
          batches: tuple[int, ...] = (1, 32), targets: tuple[str, ...] = ("cpu", "fpga", "cuda"),
          out_dir: Path | None = None, progress=None) -> dict:
    """Build and time every variant; returns {"model", "batches", "baseline", "rows": [flat dicts]}."""
    import onnx
    from rich.progress import Progress

    from accelc.data import load_dataset, random_inputs
    from accelc.reference import Reference

    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="accelc-bench-"))
    progress = progress or Progress(transient=True)
    with progress:
        # The float artifact's interface decides the inputs (it is compiled once: the fp32 variant reuses it).
        probe, _ = _compile(progress, "reference", source=model, input_shape=input_shape, target="cpu",
                            out=out_dir / "cpu-fp32")
        labels = None
        if dataset:
            x, labels = load_dataset(dataset, probe.inputs, "test")
            if calibration is None:
                calibration = load_dataset(dataset, probe.inputs, "train")[0][:256]
        else:
            x = random_inputs(probe.inputs, SAMPLES, seed=0)[0]
        variants = build_variants(model, input_shape, calibration, out_dir, set(targets), progress)
        reference = Reference(onnx.load(str(probe.reference_path))).run([x])[0]
        fid = fidelity(variants, x, labels, reference)
        timings = {b: time_variants(variants, x, b, progress) for b in batches}
    return _rows(model, variants, timings, fid, batches, dataset)


def _rows(model: Any, variants: list[Variant], timings: dict, fid: dict, batches, dataset) -> dict:
    baseline = variants[0].name  # torch eager when there is a torch source, else ORT cpu fp32
    rows, ratios = [], []
    for b in batches:
        base = np.median(timings[b].get(baseline, [np.nan]))
        for v in variants:
            if v.kind == "estimate":
                continue  # not timed: one row for all batches, below
            row: dict[str, Any] = {"variant": v.name, "target": v.target, "batch": b}
            if v.kind == "emulation":
                row["emulation"] = True
            if v.run is None:
                rows.append({**row, "status": "unavailable", "note": v.note})
                continue
            t = np.asarray(timings[b][v.name])
            p50, p90 = float(np.median(t)), float(np.percentile(t, 90))
            # an emulation's speed is no speed-up of the hardware it emulates: blank, never a ratio to the baseline
            speedup = None if v.kind == "emulation" else round(float(base) / p50, 3)
            row.update(status="ok", reps=len(t), p50_ms=round(p50 * 1e3, 4), p90_ms=round(p90 * 1e3, 4),
                       throughput_per_s=round(b / p50, 1), speedup=speedup,
                       size_bytes=v.size_bytes, macs=v.macs,
                       bit_ops=v.macs * v.bits * v.bits if v.macs is not None else None,
                       **{k: round(val, 6) for k, val in fid.get(v.name, {}).items()}, **v.compile_s, note=v.note)
            rows.append(row)
        ratio = _engine_vs_csim(timings[b], b)
        if ratio is not None:
            ratios.append(ratio)
            next(r for r in rows if r["variant"] == FPGA_ENGINE and r["batch"] == b)["engine_vs_csim"] = \
                ratio["ratio"]
    estimates = [v for v in variants if v.kind == "estimate"]
    rows += [_estimate_row(v) for v in estimates]
    source = str(model) if isinstance(model, (str, os.PathLike)) else f"<nn.Module {type(model).__name__}>"
    result = {"model": source, "batches": list(batches), "baseline": baseline, "dataset": dataset, "rows": rows}
    if any(v.kind != "measured" for v in variants):
        result["fpga"] = {"emulation": EMULATION_NOTE, "engine_vs_csim": ratios,
                          "hardware_estimate": estimates[0].estimate if estimates else None}
    return result


def _engine_vs_csim(times: dict[str, list[float]], batch: int) -> dict | None:
    """How many times faster per sample the numpy engine ran than the C simulation (p50s of this run)."""
    if not times.get(FPGA_ENGINE) or not times.get(FPGA_CSIM):
        return None
    engine, csim = float(np.median(times[FPGA_ENGINE])), float(np.median(times[FPGA_CSIM]))
    return {"batch": batch, "engine_ms_per_sample": round(engine * 1e3 / batch, 6),
            "csim_ms_per_sample": round(csim * 1e3 / batch, 6), "ratio": round(csim / engine, 3)}


def _estimate_row(v: Variant) -> dict:
    row: dict[str, Any] = {"variant": v.name, "target": v.target, "batch": None}
    if v.estimate is None:
        return {**row, "status": "unavailable", "note": v.note}
    totals, clock = v.estimate["totals"], v.estimate.get("clock_period_ns")

    def us(ns):
        return None if ns is None else round(ns / 1e3, 6)

    return {**row, "status": "estimate", "latency_cycles": totals["latency_cycles"],
            "latency_us": us(totals.get("latency_ns")), "interval_cycles": totals["interval_cycles"],
            "interval_us": us(totals.get("interval_ns")), "clock_period_ns": clock,
            "latency_kind": totals.get("latency_kind"), "multipliers": totals.get("multipliers"),
            "dsps": totals.get("dsps"), "lut_multipliers": totals.get("lut_multipliers"), "note": v.note}
