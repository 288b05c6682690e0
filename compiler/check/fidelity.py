"""Fidelity of an artifact against the float reference (the canonical model on ONNX Runtime CPU).

The metrics themselves live in accelc.metrics; `compare` is re-exported here for existing callers."""

from __future__ import annotations

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


@dataclass
class LayerError:
    layer: str  # the target's layer name (hls4ml)
    onnx_node: str | None
    shape: list[int]
    max_abs_err: float
    rmse: float
    rel_err: float  # max_abs_err / max |reference|
    jump: bool = False


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
    thresholds: dict = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def _to_channels_last(r: np.ndarray) -> np.ndarray:
    return np.moveaxis(r, 1, -1) if r.ndim >= 3 else r


def per_layer_errors(trace_layers: list[dict], traced: dict[str, np.ndarray],
                     ref_values: dict[str, np.ndarray]) -> list[LayerError]:
    """Align each traced layer to the ONNX node it came from and compare their outputs."""
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
        err, rmse, _ = compare(r, t.reshape(r.shape))
        rel = err / max(float(np.max(np.abs(r))), 1e-12)
        jump = rel > max(JUMP_FACTOR * worst, JUMP_FLOOR)
        rows.append(LayerError(layer["name"], node, list(layer["shape"]), err, rmse, rel, jump))
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
        layers = per_layer_errors(runner.trace_layers, traced, reference.run_all(inputs))
        out = outs[0]
    else:
        out = runner.run(inputs)[0]
    if out.size != ref.size:
        raise AccelcError(f"artifact output has {out.size} values, the reference {ref.size}")
    out = out.reshape(ref.shape)
    err, rmse, cosine = compare(ref, out)
    report = FidelityReport(len(inputs[0]), err, rmse, cosine, None, per_layer=layers,
                            first_jump=next((row.layer for row in layers if row.jump), None),
                            thresholds={"atol": atol, "min_agreement": min_agreement})
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
