"""The compile self-check: two comparisons, on inputs that set no range, every output, a criterion no zero,
constant or negated result passes (accelc.check.criterion).

- lowering: the artifact against the float graph it was lowered from (model.onnx), within what the target's
  arithmetic explains (fixed point widens the budget with narrow widths);
- source: the source model itself (torch eager, Keras, ONNX Runtime on the file as given) against the canonical
  graph before the user's passes, to float rounding: export, opset conversion and canonicalization are checked
  too, and a cpu artifact (ONNX Runtime on the canonical graph) can fail.
What a lossy pass cost is judged by that pass's own budget (--min-agreement), not here.

`accelc.compile` runs it on every artifact before handing it out and refuses one that fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import onnx

from accelc.artifact import MODEL, Artifact
from accelc.check.criterion import Budget, OutputAgreement, agreement, budget_for
from accelc.frontend.source_model import chunked
from accelc.metrics import compare, is_classifier, top1_agreement
from accelc.reference import Reference

SELF_CHECK_SAMPLES = 32
SELF_CHECK_SEED = 1234  # the ranges come from seed 0 (RANGE seeds in accelc.data): never the same inputs
SOURCE_BUDGET = Budget(1e-3, 0.9999, 1e-3)  # float against float: rounding only


@dataclass
class SelfCheck:
    inputs: str  # where the inputs came from (never the rows that set the ranges)
    samples: int
    budget: Budget
    outputs: list[OutputAgreement]  # the artifact against model.onnx, one per output
    source: list[OutputAgreement] | None = None  # the source model against the canonical graph
    source_note: str | None = None  # why there is no source comparison
    top1_agreement: float | None = None  # first output, for classifiers
    cosine: float = 1.0  # first output
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        first = self.outputs[0] if self.outputs else None
        return {
            "passed": self.passed, "inputs": self.inputs, "samples": self.samples,
            # the first output's figures under the keys verify's report uses
            "max_abs_err": max((o.max_abs_err for o in self.outputs), default=0.0),
            "rmse": first.rmse if first else 0.0, "cosine": self.cosine, "top1_agreement": self.top1_agreement,
            "thresholds": self.budget.to_dict(), "outputs": [o.to_dict() for o in self.outputs],
            "source": [o.to_dict() for o in self.source] if self.source is not None else None,
            "source_note": self.source_note, "seconds": round(self.seconds, 3), "violations": self.violations,
            "against": "model.onnx run in float (the graph after passes); the source model against the graph "
                       "before them",
        }



def run_self_check(art: Artifact, inputs: list[np.ndarray], described: str, run_source=None) -> SelfCheck:
    """`inputs` in the source layout, one array per model input; `run_source` runs the source model on them."""
    t0 = time.perf_counter()
    graph_inputs = art.as_inputs(inputs)
    width = art.manifest["target"].get("fixed_width")
    budget = budget_for(art.target, width)
    ref = Reference(onnx.load(str(art.path / MODEL))).run(graph_inputs)
    got = art.runner.run(graph_inputs)
    names = [o.name for o in art.outputs]
    check = SelfCheck(described, len(graph_inputs[0]), budget, [])
    if len(got) != len(ref):
        check.violations.append(f"the artifact returns {len(got)} outputs, the graph {len(ref)}")
    for name, r, g in zip(names, ref, got):
        check.outputs.append(_judge(name, r, g, budget, "artifact vs graph"))
    if ref and got and ref[0].size == got[0].size:
        check.cosine = compare(ref[0], got[0].reshape(ref[0].shape))[2]
        if is_classifier(ref[0]):
            check.top1_agreement = top1_agreement(ref[0], got[0].reshape(ref[0].shape))
    _check_source(check, art, inputs, graph_inputs, names, run_source, ref)
    check.violations += [f"{o.output}: {v}" for o in check.outputs for v in o.violations]
    check.violations += [f"source model vs canonical graph, {o.output}: {v}" for o in check.source or []
                         for v in o.violations]
    check.seconds = time.perf_counter() - t0
    return check


def _judge(name: str, ref: np.ndarray, got: np.ndarray, budget: Budget, what: str) -> OutputAgreement:
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.size != got.size:
        return OutputAgreement(name, len(ref), float("inf"), float("inf"), 0.0, float("inf"), 0.0,
                               [f"{what}: {got.size} values, expected {ref.size} ({list(ref.shape)})"])
    return agreement(name, ref.astype(np.float64), got.reshape(ref.shape).astype(np.float64), budget)


def _check_source(check: SelfCheck, art: Artifact, inputs, graph_inputs, names, run_source,
                  lowered_ref: list[np.ndarray]) -> None:
    if run_source is None:
        check.source_note = "the source cannot be run here (QONNX custom ops): checked against the converted graph"
        return
    try:
        theirs = _run_source(run_source, inputs, art)
    except Exception as e:  # noqa: BLE001 - a source model that will not run here is noted, not fatal
        text = str(e).strip().splitlines()
        check.source_note = f"the source model did not run on {len(inputs[0])} samples: {type(e).__name__}: " \
                            f"{text[0][:200] if text else ''}"
        return
    # The graph before the passes; without passes that is model.onnx, already run above.
    same = art.reference_path == art.path / MODEL
    ours = lowered_ref if same else Reference(onnx.load(str(art.reference_path))).run(graph_inputs)
    if len(theirs) != len(ours):
        check.source_note = f"the source model returns {len(theirs)} outputs, the graph {len(ours)}: not compared"
        return
    budget = SOURCE_BUDGET if art.target != "cuda" else budget_for("cuda", None)
    check.source = [_judge(name, t, o, budget, "source vs graph") for name, t, o in zip(names, theirs, ours)]


def _run_source(run_source, inputs: list[np.ndarray], art: Artifact) -> list[np.ndarray]:
    """All samples at once, or in chunks of the batch given at compile (a module that hard-codes its batch)."""
    try:
        return run_source(inputs)
    except Exception:
        batch = art.inputs[0].shape[0] or 1
        if batch >= len(inputs[0]):
            raise
        return chunked(run_source, batch)(inputs)
