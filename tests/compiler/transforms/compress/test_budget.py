"""The fidelity budget of the lossy passes: prune, depthwise and quantize warn below it (stats["budget"] says
by how much), raise FidelityBudgetError when strict on calibration data, and only warn on random inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from _transform_models import const, make, rand
from onnx import helper

from accelc.data import load_dataset
from accelc.errors import FidelityBudgetError, PassError
from accelc.frontend import load
from accelc.passes import PassContext, apply_passes
from accelc.transforms.canonical import Canonicalize
from accelc.transforms.compress._budget import MAX_REL_RMSE, MIN_AGREEMENT, judge

DIGITS_PT = Path(__file__).resolve().parents[4] / "examples" / "digits" / "digits_cnn.pt"


@pytest.fixture(scope="module")
def digits() -> tuple[onnx.ModelProto, np.ndarray]:
    """The digits CNN (a real classifier, 98 % test accuracy) canonicalized, and its training split."""
    loaded = load(DIGITS_PT, input_shape=(1, 1, 8, 8))
    Canonicalize(PassContext())(loaded.model)
    return ir.to_proto(loaded.model), load_dataset("digits", loaded.inputs, split="train")[0]


def _run(proto: onnx.ModelProto, spec: str, **context):
    return apply_passes(ir.from_proto(proto), [spec], PassContext(**context))[1][0]


def _budget_warnings(record) -> list[str]:
    return [w for w in record.warnings if "budget" in w]


def _regressor(two_outputs: bool = False) -> onnx.ModelProto:
    """conv (8x3x3x3) -> relu -> conv (4x8x3x3): a feature map, not a classifier (two_outputs: relu's too)."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1_Conv", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"], name="Relu"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], name="conv2_Conv", kernel_shape=[3, 3], pads=[1] * 4)]
    inits = [const("w1", rand(8, 3, 3, 3, seed=1)), const("b1", rand(8, seed=2)),
             const("w2", rand(4, 8, 3, 3, seed=3)), const("b2", rand(4, seed=4))]
    outputs = {"r1": ["N", 8, 8, 8]} if two_outputs else {}
    return make(nodes, {"x": ["N", 3, 8, 8]}, {**outputs, "y": ["N", 4, 8, 8]}, inits)


@pytest.mark.parametrize("spec", ["prune:sparsity=0.99", "prune:mode=channel,ratio=0.8"])
def test_heavy_pruning_of_a_classifier_warns_and_strict_refuses(digits, spec):
    proto, calib = digits
    record = _run(proto, spec, calibration=calib)
    budget = record.stats["budget"]
    assert budget["metric"] == "top1_agreement" and budget["budget"] == MIN_AGREEMENT
    assert budget["measured"] == record.stats["fidelity"]["top1_agreement"] < 0.5 and budget["passed"] is False
    assert budget["data"] == "calibration" and budget["samples"] == 128
    (warning,) = _budget_warnings(record)
    assert warning.startswith(f"top-1 agreement {budget['measured']:.3f} with the graph before prune on 128 "
                              "calibration inputs is below the budget 0.9 (--min-agreement)")
    assert "accelc finetune" in warning and "random" not in warning
    with pytest.raises(FidelityBudgetError, match=r"^prune: top-1 agreement .* refused \(--strict") as e:
        _run(proto, spec, calibration=calib, strict=True)  # through the pipeline: not rewrapped as a plain PassError
    assert e.value.exit_code == 1 and isinstance(e.value, PassError)


def test_mild_pruning_is_within_the_budget(digits):
    proto, calib = digits
    record = _run(proto, "prune:sparsity=0.2", calibration=calib, strict=True)
    assert record.stats["budget"]["passed"] is True and record.stats["budget"]["measured"] >= MIN_AGREEMENT
    assert not _budget_warnings(record)


def test_the_budget_can_be_raised_lowered_and_turned_off(digits):
    proto, calib = digits
    assert _budget_warnings(_run(proto, "prune:sparsity=0.5", calibration=calib, min_agreement=1.0))  # 0.992
    record = _run(proto, "prune:sparsity=0.99", calibration=calib, min_agreement=0.0, strict=True)
    assert record.stats["budget"]["passed"] is True and record.stats["budget"]["budget"] == 0.0
    assert not _budget_warnings(record)
    with pytest.raises(PassError, match=r"--min-agreement must be a fraction in \[0, 1\]"):
        _run(proto, "prune:sparsity=0.2", calibration=calib, min_agreement=90)


def test_random_inputs_warn_but_strict_does_not_refuse(digits):
    """No data: the figure comes from N(0,1) inputs, which says little about a classifier; warned, never fatal."""
    proto, _ = digits
    record = _run(proto, "prune:sparsity=0.99", strict=True)
    assert record.stats["budget"]["data"] == "random" and record.stats["budget"]["passed"] is False
    assert record.stats["budget"]["strict"] is False
    (warning,) = _budget_warnings(record)
    assert "32 N(0,1) random inputs" in warning and "--strict enforces the budget only on them" in warning


@pytest.mark.parametrize("spec, passed", [("quantize:fixed:4", False), ("quantize:fixed16", True)])
def test_fixed_point_widths_are_estimated_and_judged(digits, spec, passed):
    proto, calib = digits
    record = _run(proto, spec, calibration=calib, target="fpga")
    fid = record.stats["fidelity"]
    assert fid["data"] == "calibration" and "fake-quantized" in fid["estimate"]
    assert record.stats["budget"]["passed"] is passed
    assert bool(_budget_warnings(record)) is not passed
    if not passed:
        assert "estimated with a fake-quantized float graph" in _budget_warnings(record)[0]
        with pytest.raises(FidelityBudgetError, match="^quantize: "):
            _run(proto, spec, calibration=calib, target="fpga", strict=True)


def test_int8_within_the_budget_is_recorded(digits):
    proto, calib = digits
    record = _run(proto, "quantize:int8", calibration=calib, target="cpu", strict=True)
    measured = record.stats["fidelity"]["top1_agreement"]
    assert record.stats["budget"] == {"metric": "top1_agreement", "measured": measured, "budget": MIN_AGREEMENT,
                                      "passed": True, "data": "calibration", "samples": 128, "strict": True}


def test_a_non_classifier_is_judged_by_relative_error():
    proto = _regressor()
    calib = rand(64, 3, 8, 8, seed=5)
    record = _run(proto, "prune:sparsity=0.9", calibration=calib)
    budget = record.stats["budget"]
    assert budget["metric"] == "rel_rmse" and budget["budget"] == MAX_REL_RMSE and budget["passed"] is False
    assert budget["measured"] == record.stats["fidelity"]["rel_rmse"] > MAX_REL_RMSE
    assert "top1_agreement" not in record.stats["fidelity"]
    (warning,) = _budget_warnings(record)
    assert warning.startswith("relative error") and "--min-agreement 0" in warning
    with pytest.raises(FidelityBudgetError, match="^prune: relative error"):
        _run(proto, "prune:sparsity=0.9", calibration=calib, strict=True)
    off = _run(proto, "prune:sparsity=0.9", calibration=calib, min_agreement=0.0, strict=True)
    assert off.stats["budget"]["passed"] is True and off.stats["budget"]["budget"] is None
    assert not _budget_warnings(off)
    mild = _run(proto, "prune:sparsity=0.05", calibration=calib, strict=True)
    assert mild.stats["budget"]["passed"] is True and mild.stats["budget"]["measured"] <= MAX_REL_RMSE


def test_depthwise_per_layer_tol_still_answers_to_the_whole_model_budget():
    proto = _regressor()
    calib = rand(64, 3, 8, 8, seed=5)
    record = _run(proto, "depthwise:tol=0.9,multiplier=1", calibration=calib)
    assert record.stats["rewritten"] >= 1
    budget = record.stats["budget"]
    assert budget["metric"] == "rel_rmse" and budget["passed"] is False
    assert any("before depthwise" in w and "a smaller tol" in w for w in _budget_warnings(record))
    exact = _run(proto, "depthwise:tol=1e-6", calibration=calib, strict=True)  # nothing factorized: exact
    assert exact.stats["rewritten"] == 0 and exact.stats["budget"]["passed"] is True


def test_every_output_is_judged_and_the_failing_one_named():
    record = _run(_regressor(two_outputs=True), "prune:sparsity=0.9,exclude=conv1", calibration=rand(64, 3, 8, 8))
    outputs = record.stats["fidelity"]["outputs"]
    assert outputs["r1"]["rel_rmse"] == 0.0 and outputs["y"]["rel_rmse"] > MAX_REL_RMSE  # conv1 kept, conv2 pruned
    assert record.stats["budget"]["output"] == "y" and record.stats["budget"]["passed"] is False
    assert record.stats["budget"]["outputs"]["r1"]["passed"] is True
    (warning,) = _budget_warnings(record)
    assert warning.startswith("relative error of output 'y' ")


def test_judge_reports_the_first_output_that_misses_its_budget():
    fidelity = {"data": "calibration", "samples": 128, "top1_agreement": 1.0, "rel_rmse": 0.01,
                "outputs": {"logits": {"rel_rmse": 0.01, "top1_agreement": 1.0}, "box": {"rel_rmse": 0.4}}}
    stats, warning = judge("quantize", fidelity, PassContext())
    assert stats["output"] == "box" and stats["metric"] == "rel_rmse" and stats["passed"] is False
    assert stats["outputs"]["logits"]["passed"] is True
    assert warning.startswith("relative error of output 'box' 0.4 ")
    fidelity["outputs"]["box"]["rel_rmse"] = 0.05
    stats, warning = judge("quantize", fidelity, PassContext())
    assert stats["passed"] is True and warning is None
