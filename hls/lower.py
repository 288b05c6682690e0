"""Lower a canonical model to a complete hls4ml project plus a built C-simulation emulator."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx_ir as ir

from accelc.errors import AccelcError
from accelc.fpga_rules import check_engine
from accelc.hls.emulate import DEFAULT_OPT_FLAG, build_emulator, emulator_meta, save_meta
from accelc.hls.engine_choice import engine_status
from accelc.hls.extensions import register as register_extensions
from accelc.hls.multipliers import multipliers
from accelc.hls.precision import FPGA_WIDTH_KEY, FPGA_WIDTHS_KEY, type_range
from accelc.hls.prepare import prepare
from accelc.hls.project import BACKENDS, FpgaOptions, build_config, write_project
from accelc.hls.synth import synthesis_command, synthesize
from accelc.reference import Reference

RANGE_SAMPLES = 32


def observed_ranges(model_proto, calibration: list[np.ndarray] | None, seed: int = 0) -> tuple[dict, dict]:
    """Max |value| per node output and per input, on calibration data or seeded N(0,1) inputs."""
    ref = Reference(model_proto)
    if calibration is None:
        rng = np.random.default_rng(seed)
        shapes = [[d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in model_proto.graph.input]
        calibration = [rng.standard_normal((RANGE_SAMPLES, *s[1:])).astype(np.float32) for s in shapes]
    outs = ref.run_all(calibration)
    ranges = {k: float(np.max(np.abs(v))) if v.size else 0.0 for k, v in outs.items()}
    inputs = {n: float(np.max(np.abs(x))) for n, x in zip(ref.input_names, calibration)}
    return ranges, inputs


def layer_ranges(hls_model) -> dict[str, list[float]]:
    """[lo, hi] of each hls4ml layer's final result type where it saturates (SAT, SAT_SYM): a value beyond it then
    sits at a limit, which `verify` counts per layer from the trace. WRAP/SAT_ZERO types and others are left out."""
    out = {}
    for layer in hls_model.get_layers():
        var = layer.get_output_variable()
        precision = getattr(getattr(var, "type", None), "precision", None)
        mode = str(getattr(precision, "saturation_mode", "")).upper().removeprefix("SATURATIONMODE.")
        bounds = type_range(str(precision)) if mode in ("SAT", "SAT_SYM") else None
        if bounds:
            out[layer.name] = [-bounds[1] if mode == "SAT_SYM" else bounds[0], bounds[1]]
    return out


RANDOM_RANGES_WARNING = (
    "no calibration data: the fixed-point ranges come from N(0,1) inputs; if real inputs are larger (e.g. raw "
    "pixels), pass --calibration X.npy or --dataset NAME (API: calibration=): predict warns about inputs beyond them")


def lower_to_hls(model: ir.Model, options: dict, out_dir: Path, calibration: list[np.ndarray] | None) -> dict:
    opts = FpgaOptions.from_dict(options)
    width = model.metadata_props.get(FPGA_WIDTH_KEY)  # set by quantize:fixed8|fixed16|fixed:W
    if width and opts.precision is None:
        opts = replace(opts, policy=replace(opts.policy, width=int(width), weight_width=int(width)))
    if options.get("synth"):
        synthesis_command(opts.backend)  # no tool, no point converting: say so before any work
    widths = model.metadata_props.get(FPGA_WIDTHS_KEY)  # per node, set by quantize:auto
    if widths and opts.precision is None:
        opts = replace(opts, layer_widths={k: int(v) for k, v in json.loads(widths).items()})
    if opts.backend not in BACKENDS:
        raise AccelcError(f"unknown fpga backend '{opts.backend}'; choose one of: {', '.join(BACKENDS)}")
    proto = ir.to_proto(model)
    t0 = time.perf_counter()
    prepared = prepare(proto)
    ranges, input_ranges = observed_ranges(proto, calibration)
    hls_dir = out_dir / "hls"
    register_extensions()
    try:
        cfg, io_type = build_config(prepared, ranges, input_ranges, opts)
        hls_model = write_project(prepared, cfg, io_type, opts, hls_dir)
    except Exception as e:  # hls4ml raises bare Exceptions; name the target and the cause
        raise AccelcError(f"hls4ml could not convert the model for fpga ({opts.backend}): "
                          f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}") from e
    save_meta(hls_dir, emulator_meta(hls_model, prepared.node_names))
    t1 = time.perf_counter()
    engine = check_engine(options.get("engine"))
    # engine=numpy: the user accepts the engine alone, so no g++ build (the C simulation is built on first use)
    build = None if engine == "numpy" else build_emulator(hls_dir, DEFAULT_OPT_FLAG)
    if engine == "csim":
        engine_record = {"numpy": "off", "why": "compiled with engine=csim"}
    else:
        engine_record = engine_status(hls_dir)
        if engine == "numpy" and engine_record["numpy"] != "ok":
            raise AccelcError(f"engine=numpy: {engine_record['why']}; compile without it (the C simulation runs "
                              "what the engine does not)")
    engine_record["checked_against_csim"] = build is not None and engine_record["numpy"] == "ok"
    real = {n.name for n in prepared.model.graph.node} | {i.name for i in prepared.model.graph.input}
    layers = {name: c.get("Precision", {}) for name, c in cfg["LayerName"].items() if name in real}
    strategies = {name: c["Strategy"] for name, c in cfg["LayerName"].items() if "Strategy" in c}
    synthesis = synthesize(hls_dir, opts.backend) if options.get("synth") else None
    default = cfg["Model"]["Precision"]["default"]
    input_types = [cfg["LayerName"].get(i.name, {}).get("Precision", {}).get("result", default)
                   for i in prepared.model.graph.input]
    source = "user" if opts.precision else ("calibration" if calibration is not None else "random")
    warnings = [RANDOM_RANGES_WARNING] if source == "random" else []
    return {
        "warnings": warnings,
        # What each input's fixed-point type holds: Artifact.predict warns about (or refuses) inputs beyond it.
        "input_range": [list(r) if (r := type_range(t)) else None for t in input_types],
        "layer_range": layer_ranges(hls_model),  # per layer: [lo, hi] of a saturating result type (verify)
        "synthesis": synthesis,
        "backend": opts.backend,
        "hls4ml_backend": BACKENDS[opts.backend],
        "part": opts.part,
        "clock_period": opts.clock_period,
        "io_type": io_type,
        "strategy": cfg["Model"]["Strategy"],
        "layer_strategy": strategies,
        "reuse_factor": cfg["Model"]["ReuseFactor"],
        "default_precision": cfg["Model"]["Precision"]["default"],
        "precision": layers,
        "multipliers": multipliers(hls_dir),
        "fixed_width": min([opts.policy.width, *opts.layer_widths.values()]) if opts.precision is None else None,
        "precision_source": source,
        "emulator": {"key": build.key, "opt_flag": DEFAULT_OPT_FLAG, "cached": build.cached, "built": True,
                     "build_seconds": round(build.seconds, 2), "convert_seconds": round(t1 - t0, 2)}
        if build is not None else {"built": False, "opt_flag": DEFAULT_OPT_FLAG, "convert_seconds": round(t1 - t0, 2)},
        "engine": engine_record,
    }
