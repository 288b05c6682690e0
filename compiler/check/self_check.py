"""The compile self-check: the artifact against the float graph it was lowered from, on inputs of its own.

`accelc.compile` runs it on every artifact before handing it out and refuses one that disagrees beyond what the
target's arithmetic explains.
"""

from __future__ import annotations

import numpy as np
import onnx

from accelc.artifact import MODEL, Artifact
from accelc.check.fidelity import FidelityReport, verify
from accelc.data import random_inputs
from accelc.reference import Reference

SELF_CHECK_SAMPLES = 8
SELF_CHECK_SEED = 1234
# What the target's arithmetic explains: float runtimes agree to rounding, fixed point to a few %.
SELF_CHECK_RTOL = {"cpu": 1e-4, "cuda": 1e-2, "fpga": 0.05}


def self_check_rtol(art: Artifact) -> float:
    """Narrow fixed point (quantize:fixed8 ...) rounds each layer to ~2^-(W-2) of its range, and the errors
    add up over layers: below 11 bits the fpga tolerance widens with the step, 2^(6-W) (0.25 at 8 bits) —
    still far under the O(1) errors of a mistranslated layer."""
    rtol = SELF_CHECK_RTOL[art.target]
    width = art.manifest["target"].get("fixed_width")
    return max(rtol, 2.0 ** (6 - width)) if art.target == "fpga" and width else rtol


def run_self_check(art: Artifact, calibration: np.ndarray | None) -> FidelityReport:
    if calibration is not None:
        x = [np.asarray(calibration, dtype=np.float32)[:SELF_CHECK_SAMPLES]]
    else:
        x = random_inputs(art.inputs, SELF_CHECK_SAMPLES, SELF_CHECK_SEED)
    # Against the graph after the passes: the self-check judges the lowering; what a lossy pass cost
    # is in that pass's own stats, and `accelc verify` compares with the model before the passes.
    lowered = art.path / MODEL
    report = verify(art, x, per_layer=False, against=lowered)
    ref_scale = max(1.0, float(np.max(np.abs(Reference(onnx.load(str(lowered))).run(art.as_inputs(x))[0]))))
    rtol = self_check_rtol(art)
    tol = rtol * ref_scale
    report.thresholds = {"atol": tol}
    if report.max_abs_err > tol or not np.isfinite(report.max_abs_err):
        report.violations.append(f"self-check: max abs error {report.max_abs_err:.4g} > {tol:.4g} "
                                 f"({rtol:g} x output scale {ref_scale:.3g})")
    return report
