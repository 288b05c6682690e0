"""When two runs of a model agree: the compile self-check's criterion, one output at a time.

The error is measured against the output's own spread (its standard deviation over the samples), so no
all-zero, constant or negated result can pass at any width: for those the RMSE is at least the spread
(zero, constant) or twice it (negated), and every budget below keeps the relative RMSE under 1. The
correlation must be high too, and the largest single error bounded: relative to the output's scale, widening
with narrow fixed point, never beyond half the spread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# (relative RMSE, min correlation, max abs error / scale) for float runtimes: ONNX Runtime against itself or
# against torch/Keras eager, where only float rounding (fused kernels, folded BatchNorm) may differ.
FLOAT_BUDGET = {"cpu": (1e-3, 0.9999, 1e-3), "cuda": (1e-2, 0.999, 1e-2)}
FIXED_RTOL = 0.05  # the largest error of a wide (>= 11 bit) fixed-point artifact, relative to the output scale


@dataclass(frozen=True)
class Budget:
    rel_rmse: float  # RMSE / spread; < 1 whatever the width
    correlation: float
    rtol: float  # max abs error / output scale (floored at 1: fixed point has absolute resolution)

    def to_dict(self) -> dict:
        return asdict(self)


def budget_for(target: str, width: int | None) -> Budget:
    """The fpga budget widens with narrow widths (each layer rounds to ~2^-(W-2) of its range, the errors add up
    over layers) up to RMSE half the spread at 6 bits and below."""
    if target != "fpga":
        return Budget(*FLOAT_BUDGET[target])
    rtol = max(FIXED_RTOL, 2.0 ** (6 - width)) if width else FIXED_RTOL
    rel = min(0.5, max(0.1, 2.0 ** (6 - width))) if width else 0.1
    return Budget(rel, max(0.8, 1.0 - rel), rtol)


@dataclass
class OutputAgreement:
    output: str
    samples: int
    max_abs_err: float
    rmse: float
    spread: float  # std of the reference output
    rel_rmse: float
    correlation: float
    violations: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def agreement(name: str, ref: np.ndarray, out: np.ndarray, budget: Budget) -> OutputAgreement:
    """Judge `out` against `ref` (same number of values) under `budget`."""
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    o = np.asarray(out, dtype=np.float64).reshape(-1)
    samples = int(ref.shape[0]) if np.ndim(ref) else 1
    problems: list[str] = []
    finite = np.isfinite(r)
    # Where the reference itself is not finite (log of a negative input), only the same non-finite value agrees.
    odd = int(np.count_nonzero(~finite & ~((np.isnan(r) & np.isnan(o)) | (r == o))))
    odd += int(np.count_nonzero(finite & ~np.isfinite(o)))
    if odd:
        problems.append(f"{odd} values differ in finiteness (NaN/Inf) from the reference")
    r, o = r[finite & np.isfinite(o)], o[finite & np.isfinite(o)]
    if not r.size:
        return OutputAgreement(name, samples, 0.0, 0.0, 0.0, 0.0, 1.0, problems)
    diff = o - r
    max_abs, rmse = float(np.max(np.abs(diff))), float(np.sqrt(np.mean(diff**2)))
    scale = float(np.max(np.abs(r)))
    spread = float(np.std(r))
    if spread > 1e-9 * max(scale, 1e-30):
        rel = rmse / spread
        corr = float(np.corrcoef(r, o)[0, 1]) if np.std(o) > 0 else 0.0
    else:  # a constant reference: the error relative to its value (or to 1 around zero)
        rel = rmse / max(scale, 1.0)
        corr = 1.0 if rel <= budget.rel_rmse else 0.0
    atol = budget.rtol * max(scale, 1.0)
    if spread > 0:
        atol = min(atol, max(budget.rtol * scale, 0.5 * spread))
    if rel > budget.rel_rmse:
        problems.append(f"RMSE {rmse:.4g} is {rel:.3g} x the output's spread {spread:.4g} (budget {budget.rel_rmse:g})")
    if corr < budget.correlation:
        problems.append(f"correlation {corr:.4f} with the reference < {budget.correlation:g}")
    if max_abs > atol:
        problems.append(f"max abs error {max_abs:.4g} > {atol:.4g}")
    return OutputAgreement(name, samples, max_abs, rmse, spread, rel, corr, problems)
