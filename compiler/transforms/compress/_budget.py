"""The fidelity budget of the lossy passes (prune, depthwise, quantize): how close to the graph before it a pass must
leave the model, judged on the figures the pass measured (accelc.transforms.compress._measure).

A classifier's output (N, classes) is judged by its top-1 agreement with the graph before the pass: at least
`context.min_agreement` (None: MIN_AGREEMENT). Any other output by its RMSE relative to its own spread (the
reference output's standard deviation, _measure.spread): at most MAX_REL_RMSE. `min_agreement=0` turns the budget
off for every kind of output. Every output of the model is judged; the first that misses its budget is reported.

Below the budget the pass's result gets a warning (the manifest keeps it, the CLI prints it) and, with
`context.strict`, a FidelityBudgetError instead — but only where the figures come from the user's calibration data.
Measured on seeded N(0,1) inputs (no data given) the budget warns and is never fatal: random inputs are not the
model's inputs and a classifier's agreement there says little about a healthy model. Measured on the digits CNN:
50 % magnitude pruning keeps top-1 agreement 1.0 on its calibration data and 0.78 on N(0,1); 20 % channel pruning
0.91 vs 0.47 — a strict budget on random inputs would refuse healthy models for want of data.
"""

from __future__ import annotations

from accelc.errors import FidelityBudgetError, PassError
from accelc.passes import PassContext, PassResult

MIN_AGREEMENT = 0.9  # default budget of a classifier: top-1 agreement with the graph before the pass
MAX_REL_RMSE = 0.1  # default budget of any other output: RMSE / the output's standard deviation
AGREEMENT = "top1_agreement"
REL_RMSE = "rel_rmse"


def min_agreement(context: PassContext) -> float:
    """The classifier budget in force: the context's, or MIN_AGREEMENT; refused outside [0, 1]."""
    value = MIN_AGREEMENT if context.min_agreement is None else float(context.min_agreement)
    if not 0.0 <= value <= 1.0:
        raise PassError(f"--min-agreement must be a fraction in [0, 1] (top-1 agreement), got {value:g}")
    return value


def _verdict(figures: dict, floor: float) -> dict:
    """One output's figure against its budget."""
    if AGREEMENT in figures:
        measured = figures[AGREEMENT]
        return {"metric": AGREEMENT, "measured": measured, "budget": floor, "passed": measured >= floor}
    measured = figures[REL_RMSE]
    if floor == 0.0:  # --min-agreement 0: no budget at all
        return {"metric": REL_RMSE, "measured": measured, "budget": None, "passed": True}
    return {"metric": REL_RMSE, "measured": measured, "budget": MAX_REL_RMSE, "passed": measured <= MAX_REL_RMSE}


def judge(pass_name: str, fidelity: dict, context: PassContext, milder: str = "a milder setting") -> tuple[dict,
                                                                                                        str | None]:
    """(the budget's stats, the warning or None) for a pass's measured fidelity; raises FidelityBudgetError when
    the budget is missed on calibration data and the context is strict. `milder` names what the user can relax."""
    floor = min_agreement(context)
    outputs = fidelity.get("outputs") or {"": fidelity}
    verdicts = {name: _verdict(figures, floor) for name, figures in outputs.items()}
    failed = [name for name, v in verdicts.items() if not v["passed"]]
    name = failed[0] if failed else next(iter(verdicts))
    random = fidelity.get("data") != "calibration"
    stats = {**verdicts[name], "data": fidelity.get("data"), "samples": fidelity.get("samples"),
             "strict": bool(context.strict) and not random}
    if len(verdicts) > 1:
        stats.update(output=name, outputs=verdicts)
    if not failed:
        return stats, None
    message = _message(pass_name, stats, name if len(verdicts) > 1 else None, fidelity, milder)
    if stats["strict"]:
        raise FidelityBudgetError(f"{pass_name}: {message} — refused (--strict; without it the model is kept with "
                                  "this warning)")
    return stats, message


def check_budget(result: PassResult, pass_name: str, context: PassContext,
                 milder: str = "a milder setting") -> PassResult:
    """Judge the result's stats["fidelity"] (nothing to judge without one): stats["budget"], and the warning."""
    fidelity = result.stats.get("fidelity")
    if fidelity is None:
        return result
    result.stats["budget"], warning = judge(pass_name, fidelity, context, milder)
    if warning:
        result.warnings.append(warning)
    return result


def _message(pass_name: str, stats: dict, output: str | None, fidelity: dict, milder: str) -> str:
    """The warning, without the pass-name prefix the pipeline and the CLI put before every pass warning."""
    of = f" of output '{output}'" if output else ""
    where = f"{stats['samples']} {'calibration' if stats['data'] == 'calibration' else 'N(0,1) random'} inputs"
    if fidelity.get("estimate"):
        where += " (estimated with a fake-quantized float graph)"
    if stats["metric"] == AGREEMENT:
        text = (f"top-1 agreement{of} {stats['measured']:.3f} with the graph before {pass_name} on {where} is below "
                f"the budget {stats['budget']:g} (--min-agreement): the compressed model disagrees with the "
                f"original; use {milder}, fine-tune (`accelc finetune`), or lower --min-agreement")
    else:
        text = (f"relative error{of} {stats['measured']:.3g} (RMSE / the output's standard deviation) against the "
                f"graph before {pass_name} on {where} is above the budget {stats['budget']:g}: the compressed "
                f"model's output is off; use {milder}, fine-tune (`accelc finetune`), or turn the budget off with "
                "--min-agreement 0")
    if stats["data"] != "calibration":
        text += (" — measured on random inputs, not your data (a healthy model can disagree there): give "
                 "--calibration FILE.npy or --dataset NAME to measure on real inputs; --strict enforces the "
                 "budget only on them")
    return text
