"""Fidelity of an artifact against the float reference (the canonical model on ONNX Runtime CPU).

Per layer (fpga, from hls4ml's C simulation trace): the error against the ONNX node the layer came from, and
the fraction of its values clipped at its saturating result type's limits, so that inputs beyond the range the
types were sized for show where they first saturate instead of only as a larger error at the end.
The metrics themselves live in accelc.metrics; `compare` is re-exported here for existing callers."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from accelc.artifact import Artifact
from accelc.errors import AccelcError
from accelc.metrics import accuracy, compare, is_classifier, top1_agreement
from accelc.reference import Reference

# A layer is flagged where its relative error is this many times the worst before it (and not tiny).
JUMP_FACTOR = 4.0
JUMP_FLOOR = 0.02
# A layer saturates where more than this fraction of its values is clipped (each one counted is off by > 1 lsb).
SATURATION_FLOOR = 0.0


@dataclass
class LayerError:
    layer: str  # the target's layer name (hls4ml)
    onnx_node: str | None
    shape: list[int]
    max_abs_err: float
    rmse: float
    rel_err: float  # max_abs_err / max |reference|
    jump: bool = False
    # Fraction of the traced values clipped at their result type's limits (None: no saturating type known).
    saturated: float | None = None
    limits: list[float] | None = None  # [lo, hi] that result type holds


@dataclass
class FidelityReport:
    samples: int
    max_abs_err: float
    rmse: float
    cosine: float
    top1_agreement: float | None
    accuracy_reference: float | None = None
    accuracy_artifact: float | None = None
    per_layer: list[LayerError] = field(default_factory=list)
    first_jump: str | None = None
    first_saturating: str | None = None  # the first layer (trace order) with values clipped at its type's limits
    # per fpga input with a known range: the fraction of its values beyond what its fixed-point type holds
    inputs_saturated: dict[str, float] = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    # QONNX sources: the artifact against qonnx's executor on the file as given (the QONNX semantics), beside the
    # comparison with the converted graph above; None where the source is another kind, gone or changed
    source: dict | None = None

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def _against_qonnx_source(artifact: Artifact, inputs: list[np.ndarray], out: np.ndarray) -> dict | None:
    """The artifact's first output against qonnx's executor on the QONNX file it was compiled from."""
    import hashlib

    from accelc.frontend.source_model import qonnx_runner

    source = artifact.manifest.get("source", {})
    path = Path(str(source.get("path", "")))
    if source.get("kind") != "qonnx" or not path.is_file():
        return None
    if hashlib.sha256(path.read_bytes()).hexdigest() != source.get("sha256"):
        return None
    want = np.asarray(qonnx_runner(path)(inputs)[0], dtype=np.float32).reshape(out.shape)
    got = out.astype(np.float32)
    d = {"runner": "qonnx executor", "max_abs_err": float(np.max(np.abs(got - want))) if got.size else 0.0,
         "exact_fraction": float(np.mean(got == want)) if got.size else 1.0}
    if is_classifier(want):
        d["top1_agreement"] = top1_agreement(want, got)
    return d


def _to_channels_last(r: np.ndarray) -> np.ndarray:
    return np.moveaxis(r, 1, -1) if r.ndim >= 3 else r


def type_lsb(lo: float, hi: float) -> float:
    """The step of a fixed-point type holding [lo, hi]: hi = 2^k - lsb for the power of two 2^k just above hi
    (signed fixed<W,I>: 2^(I-1), unsigned: 2^I, symmetric saturation: lo = -hi)."""
    if hi <= 0:
        return max(-(lo + hi), 0.0) or 1.0
    top = 2.0 ** math.ceil(math.log2(hi))
    if top <= hi:
        top *= 2
    return top - hi


def saturated_fraction(traced: np.ndarray, limits, reference: np.ndarray | None = None) -> float | None:
    """The fraction of `traced` values clipped at [lo, hi] (None without limits or values).

    A value counts where it sits at a limit (within half an lsb: traced values are multiples of it) and the
    float `reference` (same size) lies beyond that limit by more than an lsb, so a value that really is the
    limit is not counted. Without a reference only the trace decides, and an unsigned type's 0 is not counted."""
    t = np.asarray(traced, dtype=np.float64).reshape(-1)
    if limits is None or not t.size:
        return None
    lo, hi = float(limits[0]), float(limits[1])
    lsb = type_lsb(lo, hi)
    at_lo, at_hi = t <= lo + lsb / 2, t >= hi - lsb / 2
    if reference is not None:
        r = np.asarray(reference, dtype=np.float64).reshape(-1)
        clipped = (at_lo & (r < lo - lsb)) | (at_hi & (r > hi + lsb))
    else:
        clipped = at_hi | (at_lo if lo < 0 else False)
    return float(np.count_nonzero(clipped)) / t.size


_SATURATING = {"SAT", "SAT_SYM"}  # hls4ml's SAT_ZERO sends overflow to 0 and WRAP wraps: neither sits at a limit


def _saturating_range(hls_type: str) -> list[float] | None:
    """[lo, hi] of a manifest precision string like fixed<18,5,RND,SAT> whose overflow saturates, else None."""
    from accelc.hls.precision import type_range

    inner = re.search(r"<([^>]*)>", str(hls_type))
    modes = {p.strip().upper().removeprefix("AP_") for p in inner.group(1).split(",")[2:]} if inner else set()
    bounds = type_range(hls_type) if modes & _SATURATING else None
    if bounds is None:
        return None
    return [-bounds[1] if "SAT_SYM" in modes else bounds[0], bounds[1]]


def layer_limits(target: dict, layers: list[str]) -> dict[str, list[float]]:
    """[lo, hi] of each traced layer's saturating result type: the lowering's `layer_range` (hls4ml's final types),
    else (an artifact from before it) the manifest's per-layer `precision` entries by name."""
    if "layer_range" in target:
        return {name: list(r) for name, r in target["layer_range"].items() if r and name in layers}
    from accelc.hls.cost import manifest_precision

    precision = target.get("precision") or {}
    out = {}
    for name in layers:
        result = (manifest_precision(name, precision) or {}).get("result")
        if result and (bounds := _saturating_range(result)):
            out[name] = bounds
    return out


def inputs_saturated(artifact: Artifact, inputs: list[np.ndarray]) -> dict[str, float]:
    """Per input with a known range (fpga): the fraction of its values beyond it, by Artifact.range_problems' rule."""
    return {spec.name: float(np.count_nonzero(mask)) / arr.size
            for spec, arr, _, mask in artifact.outside_input_range(inputs)}


def percent(fraction: float) -> str:
    """3.1 %, 0.052 %, 100 %: enough digits that a small nonzero fraction never reads as 0."""
    return f"{100 * fraction:.2g} %" if 0 < fraction < 0.001 else f"{100 * fraction:.1f} %".replace(".0 %", " %")


_SIZED_FROM = {
    "random": "seeded N(0,1) inputs (no calibration data was given)",
    "calibration": "the calibration data, which these inputs exceed",
    "user": "the blanket --precision type given at compile",
    "input_range": "the --input-range given at compile",
}


def saturation_lines(report: FidelityReport, manifest: dict) -> list[str]:
    """What saturated and what to do about it: one line per saturated input and one for the first layer."""
    target = manifest["target"]
    ranges = {i["name"]: r for i, r in zip(manifest.get("inputs", []), target.get("input_range") or []) if r}
    lines = []
    for name, fraction in report.inputs_saturated.items():
        if fraction > 0 and name in ranges:
            lo, hi = ranges[name]
            lines.append(f"input '{name}' saturates ({percent(fraction)} of its values beyond [{lo:g}, {hi:g}], the "
                         "range its fixed-point type holds)")
    row = next((r for r in report.per_layer if r.layer == report.first_saturating), None)
    if row is not None and row.saturated is not None:
        source = target.get("precision_source") or "unknown"
        held = f" [{row.limits[0]:g}, {row.limits[1]:g}]" if row.limits else ""
        fix = ("recompile with a type of more integer bits (--precision), or without --precision and with "
               "calibration data of the real range" if source == "user" else "recompile with calibration data of "
               "the real range") + " (--calibration/--dataset/--input-range)"
        lines.append(f"layer {row.layer} saturates ({percent(row.saturated)} of its values at its type's limits"
                     f"{held}): its type was sized from {_SIZED_FROM.get(source, source)}; {fix}")
    return lines


def per_layer_errors(trace_layers: list[dict], traced: dict[str, np.ndarray],
                     ref_values: dict[str, np.ndarray], limits: dict[str, list[float]] | None = None
                     ) -> list[LayerError]:
    """Align each traced layer to the ONNX node it came from and compare their outputs; with `limits` (layer ->
    its saturating result type's [lo, hi]) also count the values clipped at them."""
    rows: list[LayerError] = []
    worst = 0.0
    for layer in trace_layers:
        node = layer.get("onnx_node")
        if node not in ref_values or layer["name"] not in traced:
            continue
        r = _to_channels_last(ref_values[node])
        t = traced[layer["name"]]
        if r.size != t.size:
            continue  # e.g. a layout Transpose inserted by lowering: nothing to align it to
        t = t.reshape(r.shape)
        err, rmse, _ = compare(r, t)
        rel = err / max(float(np.max(np.abs(r))), 1e-12)
        jump = rel > max(JUMP_FACTOR * worst, JUMP_FLOOR)
        bounds = (limits or {}).get(layer["name"])
        rows.append(LayerError(layer["name"], node, list(layer["shape"]), err, rmse, rel, jump,
                               saturated_fraction(t, bounds, r), list(bounds) if bounds else None))
        worst = max(worst, rel)
    return rows


def verify(artifact: Artifact, x: np.ndarray | list[np.ndarray], labels: np.ndarray | None = None,
           atol: float | None = None, min_agreement: float | None = None, per_layer: bool = True,
           against: Path | None = None) -> FidelityReport:
    """Run the artifact and the float reference on the same inputs and compare them.

    The reference is the float model before any pass (so compression losses show), unless `against`
    names another float ONNX model (the compile self-check uses the graph after the passes)."""
    inputs = artifact.as_inputs(x)
    reference = Reference(onnx.load(str(against or artifact.reference_path)))
    ref = reference.run(inputs)[0]
    runner = artifact.runner
    layers: list[LayerError] = []
    if per_layer and hasattr(runner, "trace"):
        outs, traced = runner.trace(inputs)
        limits = layer_limits(artifact.manifest["target"], [t["name"] for t in runner.trace_layers])
        layers = per_layer_errors(runner.trace_layers, traced, reference.run_all(inputs), limits)
        out = outs[0]
    else:
        out = runner.run(inputs)[0]
    if out.size != ref.size:
        raise AccelcError(f"artifact output has {out.size} values, the reference {ref.size}")
    out = out.reshape(ref.shape)
    err, rmse, cosine = compare(ref, out)
    report = FidelityReport(len(inputs[0]), err, rmse, cosine, None, per_layer=layers,
                            first_jump=next((row.layer for row in layers if row.jump), None),
                            first_saturating=next((row.layer for row in layers if row.saturated is not None
                                                   and row.saturated > SATURATION_FLOOR), None),
                            inputs_saturated=inputs_saturated(artifact, inputs),
                            thresholds={"atol": atol, "min_agreement": min_agreement})
    report.source = _against_qonnx_source(artifact, inputs, out)
    if is_classifier(ref):
        report.top1_agreement = top1_agreement(ref, out)
        if labels is not None:
            report.accuracy_reference = accuracy(ref, labels)
            report.accuracy_artifact = accuracy(out, labels)
    if atol is not None and err > atol:
        report.violations.append(f"max abs error {err:.4g} > atol {atol:g}")
    if min_agreement is not None:
        if report.top1_agreement is None:
            report.violations.append("--min-agreement given but the output is not a classifier's (N, classes)")
        elif report.top1_agreement < min_agreement:
            report.violations.append(f"top-1 agreement {report.top1_agreement:.4f} < {min_agreement:g}")
    return report
