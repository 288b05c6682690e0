"""The compile self-check's former holes, each closed: an all-zero / constant / negated artifact passed at narrow
widths, only the first output was compared, the reference was the canonical graph (a canonicalization bug was
invisible, and the cpu check compared ONNX Runtime with itself), and its inputs were the calibration rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir
import pytest
import torch
from torch import nn

import accelc
from accelc.artifact import Artifact
from accelc.check.criterion import agreement, budget_for
from accelc.check.inputs import SAMPLE_FILE, default_inputs, plan_inputs
from accelc.check.self_check import run_self_check
from accelc.data import random_inputs
from accelc.errors import VerificationError
from accelc.spec import TensorSpec


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 5)
        with torch.no_grad():  # running statistics that are not the identity: folding them matters
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.bn(self.conv(x))), 1)) * 0.05  # small outputs: |y| < 1


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.body = nn.Linear(8, 6)
        self.a, self.b = nn.Linear(6, 3), nn.Linear(6, 2)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return self.a(h), self.b(h)


class Fake:
    """A runner standing in for a broken lowering: `change` maps the true outputs to what it returns."""

    def __init__(self, real, change) -> None:
        self.real, self.change = real, change

    def run(self, inputs):
        return self.change(self.real.run(inputs))


def _as(art: Artifact, runner, target: str | None = None, width: int | None = None) -> Artifact:
    manifest = {**art.manifest, "target": {**art.manifest["target"]}}
    if target:
        manifest["target"]["name"] = target
    if width:
        manifest["target"]["fixed_width"] = width
    return Artifact(art.path, manifest, Fake(art.runner, runner))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Artifact:
    return accelc.compile(SmallNet(), target="cpu", input_shape=(1, 1, 8, 8),
                          out=tmp_path_factory.mktemp("small") / "art")


def _inputs(art: Artifact) -> list[np.ndarray]:
    return random_inputs(art.inputs, 32, 1234)


@pytest.mark.parametrize("width", [5, 6, 8, 12, 18])
@pytest.mark.parametrize("kind", ["zero", "constant", "negated"])
def test_no_zero_constant_or_negated_artifact_passes_at_any_width(small: Artifact, width: int, kind: str) -> None:
    change = {"zero": lambda ys: [np.zeros_like(y) for y in ys],
              "constant": lambda ys: [np.full_like(y, float(np.mean(y))) for y in ys],
              "negated": lambda ys: [-y for y in ys]}[kind]
    x = _inputs(small)
    ref = small.runner.run(small.as_inputs(x))[0]
    # The former criterion, max abs err <= max(0.05, 2^(6-W)) x max(1, max|ref|), let these through below 7 bits:
    old_tol = max(0.05, 2.0 ** (6 - width)) * max(1.0, float(np.max(np.abs(ref))))
    if width <= 6 and kind != "negated":
        assert float(np.max(np.abs(change([ref])[0] - ref))) <= old_tol
    check = run_self_check(_as(small, change, "fpga", width), x, "test rows")
    assert not check.passed and check.violations


def test_a_healthy_narrow_artifact_passes(small: Artifact) -> None:
    # Noise of a tenth of the spread, as 6-bit fixed point might add: within the 6-bit budget.
    rng = np.random.default_rng(0)
    x = _inputs(small)
    check = run_self_check(_as(small, lambda ys: [y + 0.1 * np.std(y) * rng.standard_normal(y.shape) for y in ys],
                               "fpga", 6), x, "test rows")
    assert check.passed, check.violations


def test_every_output_is_compared(tmp_path) -> None:
    art = accelc.compile(TwoHeads(), target="cpu", input_shape=(1, 8), out=tmp_path / "art")
    assert art.manifest["self_check"]["passed"] and len(art.manifest["self_check"]["outputs"]) == 2
    x = random_inputs(art.inputs, 32, 7)
    wrong_second = _as(art, lambda ys: [ys[0], ys[1] * 1.5 + 0.2])
    check = run_self_check(wrong_second, x, "test rows")
    assert not check.passed
    second = art.outputs[1].name
    assert all(v.startswith(f"{second}:") for v in check.violations), check.violations
    assert check.outputs[0].violations == []


class MisfoldedBatchNorm:
    """A canonicalization bug: BatchNorm folded, then the folded bias off by 0.1 (a wrong epsilon would do the
    same). The artifact agrees with the (wrong) canonical graph, so only the source model can tell."""

    @staticmethod
    def install(monkeypatch) -> None:
        from accelc.transforms.canonical import fold_batchnorm

        real = fold_batchnorm.FoldBatchNorm.call

        def call(self, model):
            result = real(self, model)
            for value in model.graph.initializers.values():
                if value.const_value is not None and len(value.shape) == 1 and value.shape[0] == 4:
                    value.const_value = ir.tensor(value.const_value.numpy() + np.float32(0.1))
                    break
            return result

        monkeypatch.setattr(fold_batchnorm.FoldBatchNorm, "call", call)


def test_a_broken_canonicalization_is_caught_by_the_source_model(tmp_path, monkeypatch) -> None:
    MisfoldedBatchNorm.install(monkeypatch)
    with pytest.raises(VerificationError, match="source model vs canonical graph"):
        accelc.compile(SmallNet(), target="cpu", input_shape=(1, 1, 8, 8), out=tmp_path / "art", force=True)
    art = accelc.compile(SmallNet(), target="cpu", input_shape=(1, 1, 8, 8), out=tmp_path / "kept",
                         self_check="warn", force=True)
    check = art.manifest["self_check"]
    assert check["outputs"][0]["violations"] == []  # ONNX Runtime agrees with the graph it ran
    assert check["source"][0]["violations"]  # torch eager does not


def test_the_source_model_is_compared_for_each_source_kind(small: Artifact, tmp_path) -> None:
    check = small.manifest["self_check"]
    assert check["source"] and check["source"][0]["rel_rmse"] < 1e-4 and check["source_note"] is None
    onnx_art = accelc.compile(small.path / "model.onnx", target="cpu", out=tmp_path / "onnx")
    assert onnx_art.manifest["self_check"]["source"][0]["violations"] == []


def test_self_check_inputs_are_held_out_from_the_calibration(tmp_path) -> None:
    rows = np.random.default_rng(3).uniform(0, 1, (100, 1, 8, 8)).astype(np.float32)
    art = accelc.compile(SmallNet(), target="cpu", input_shape=(1, 1, 8, 8), calibration=rows, out=tmp_path / "a")
    record, check = art.manifest["calibration"], art.manifest["self_check"]
    assert record == {"kind": "data", "origin": "calibration data", "rows": 68, "held_out": True,
                      "sample": SAMPLE_FILE}
    assert check["samples"] == 32 and "held-out" in check["inputs"]
    kept = default_inputs(art)[0]  # verify's and report's default: the kept sample, held-out rows first
    assert kept.shape == (64, 1, 8, 8)
    np.testing.assert_array_equal(kept[:32], rows[-32:])
    np.testing.assert_array_equal(kept[32:], rows[:32])


def test_few_calibration_rows_check_on_mixes_of_them() -> None:
    spec = TensorSpec("x", (1, 3), "NC")
    rows = np.array([[0, 0, 0], [1, 2, 3], [4, 4, 4]], dtype=np.float32)
    plan = plan_inputs([spec], rows, None)
    check = plan.check[0]
    assert check.shape == (32, 3) and "mixes" in plan.check_described
    assert not any(np.any(np.all(np.isclose(check, r), axis=1)) for r in rows)  # none is a calibration row
    assert check.min() >= 0 and check.max() <= 4  # yet in the data's range


def test_verify_random_never_replays_the_range_inputs(small: Artifact) -> None:
    # The lowering sets ranges from 32 N(0,1) rows of seed 0 (hls.lower.observed_ranges); verify --random 32 used
    # to draw exactly those.
    lowered = np.random.default_rng(0).standard_normal((32, 1, 8, 8)).astype(np.float32)
    drawn = default_inputs(small, 32, seed=0)[0]
    assert drawn.shape == lowered.shape and not np.allclose(drawn, lowered)
    check_rows = plan_inputs(small.inputs, None, None).check[0]
    assert not np.allclose(check_rows, lowered)


def test_criterion_budgets_stay_below_the_spread() -> None:
    for width in range(2, 33):
        budget = budget_for("fpga", width)
        assert budget.rel_rmse < 1 and budget.correlation > 0.5
    r = np.random.default_rng(0).standard_normal((32, 10))
    assert agreement("y", r, r + 1e-6, budget_for("cpu", None)).violations == []
    assert agreement("y", r, r * 0, budget_for("fpga", 4)).violations


def test_non_finite_reference_values_must_match() -> None:
    r = np.array([[1.0, np.nan, 2.0, -1.0]])
    assert agreement("y", r, r.copy(), budget_for("cpu", None)).violations == []
    out = dataclasses.replace(agreement("y", r, np.array([[1.0, 0.0, 2.0, -1.0]]), budget_for("fpga", 16)))
    assert any("finiteness" in v for v in out.violations)
