"""The operator conformance suite: accelc's fpga and cpu outcomes are never wrong or crashed.

By default the representative slice (Case.fast) runs; ACCELC_CONFORMANCE=full runs every case (CI's .ci/run).
Each case compiles in its own subprocess (accelc.tools.conformance.run.run_isolated), so an emulator that aborts is
one failing case. hls4ml's own frontend is measured by `python -m accelc.tools.conformance`, not asserted here,
except that its runner must classify a known-good case as matched.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from accelc.tools.conformance.cases import catalogue
from accelc.tools.conformance.run import FIXED_RTOL, compare, make_inputs, reference, run_isolated, tolerance
from accelc.tools.conformance.table import failure_lines, markdown

FULL = os.environ.get("ACCELC_CONFORMANCE") == "full"
CASES = catalogue(fast=not FULL)
# The ops issue 6 names; every one must have cases, and a case in the fast slice.
ISSUE_OPS = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "Pad", "Flatten", "Reshape", "Gemm", "MatMul",
             "Add", "Sub", "Mul", "Div", "Softmax", "LogSoftmax", "Clip", "Relu", "Sigmoid", "Tanh", "HardSigmoid",
             "Elu", "Selu", "PRelu", "LeakyRelu", "Dropout", "Identity", "Resize", "Upsample", "ConvTranspose",
             "Concat", "Transpose", "BatchNormalization", "QuantizeLinear/DequantizeLinear"}


def test_catalogue_models_are_valid_and_run_in_onnxruntime(tmp_path):
    cases = catalogue()
    assert len({c.name for c in cases}) == len(cases)
    for case in cases:
        model = case.build()
        onnx.checker.check_model(model, full_check=True)
        assert len(model.graph.input) == len(case.input_shapes), case.name
        path = tmp_path / f"{case.name}.onnx"
        onnx.save(model, str(path))
        outs = reference(path, make_inputs(case, 3, 0))
        assert outs and all(np.all(np.isfinite(y)) for y in outs), case.name


def test_catalogue_covers_every_op_and_the_fast_slice_too():
    ops = {c.op for c in catalogue()}
    assert ISSUE_OPS <= ops, ISSUE_OPS - ops
    fast_ops = {c.op for c in catalogue(fast=True)}
    assert ISSUE_OPS - {"Upsample"} <= fast_ops, ISSUE_OPS - fast_ops  # Upsample: Resize's opset-9 form
    assert any(op.startswith("pattern:") for op in fast_ops)
    assert 20 <= len(catalogue(fast=True)) < len(catalogue())


def test_outcome_classification_follows_the_tolerance_rule():
    case = catalogue(ops=["Relu"])[0]
    ref = [np.array([[0.5, -3.0, 2.0]], dtype=np.float32)]
    assert tolerance("fpga", ref) == pytest.approx(FIXED_RTOL * 3.0)
    assert tolerance("cpu", [np.array([0.1], dtype=np.float32)]) == pytest.approx(1e-5)
    assert compare(case, "fpga", [ref[0] + 0.05], ref, 0.0).cls == "matched"
    wrong = compare(case, "fpga", [ref[0] + 0.07], ref, 0.0)
    assert wrong.cls == "wrong" and wrong.max_err == pytest.approx(0.07, rel=1e-4)
    assert compare(case, "cpu", [ref[0] + 1e-3], ref, 0.0).cls == "wrong"
    assert compare(case, "fpga", [np.full_like(ref[0], np.nan)], ref, 0.0).cls == "wrong"
    assert compare(case, "fpga", [ref[0][:, :2]], ref, 0.0).cls == "wrong"  # a silently dropped value
    # Same values in another shape (e.g. channels-last kept) count by their position, not by their set.
    assert compare(case, "fpga", [ref[0][:, ::-1]], ref, 0.0).cls == "wrong"


def test_table_counts_every_class_and_lists_failures():
    from accelc.tools.conformance.run import Outcome

    outcomes = [Outcome("a", "Conv", "fpga", "matched"), Outcome("b", "Conv", "fpga", "wrong", 0.5, 0.02),
                Outcome("a", "Conv", "hls4ml", "refused"), Outcome("b", "Conv", "hls4ml", "crashed")]
    text = markdown(outcomes)
    assert "| Conv | 2 | 1/0/0/1/0 | 0/1/0/0/1 |" in text
    assert failure_lines(outcomes) == ["- fpga wrong b: max abs err 0.5 > tol 0.02"]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_accelc_is_never_wrong_and_never_crashes(case, tmp_path):
    outcomes = run_isolated(case, ("fpga", "cpu"), tmp_path)
    bad = [f"{o.runner}: {o.cls} (max abs err {o.max_err}, tol {o.tol}) {o.detail}" for o in outcomes
           if o.cls in ("wrong", "crashed")]
    assert not bad, f"{case.name}: " + "; ".join(bad)
    cpu = next(o for o in outcomes if o.runner == "cpu")
    assert cpu.cls == "matched", f"ONNX Runtime runs every standard op, yet cpu was {cpu.cls}: {cpu.detail}"


@pytest.mark.slow
def test_hls4ml_direct_runner_matches_a_known_good_case(tmp_path):
    case = next(c for c in catalogue() if c.name == "Conv_k3")
    (outcome,) = run_isolated(case, ("hls4ml",), tmp_path)
    assert outcome.cls == "matched", outcome
    assert 0 < outcome.max_err <= outcome.tol  # fixed point: close, never bit-exact
