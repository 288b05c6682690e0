"""verify's saturation figures: the fraction of a layer's traced values clipped at its result type's limits, the
first saturating layer, inputs beyond their type's range, and one real fpga compile fed inputs 10x its ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import accelc
from accelc.artifact import FORMAT_VERSION, MODEL, Artifact
from accelc.check.fidelity import (
    FidelityReport,
    LayerError,
    layer_limits,
    per_layer_errors,
    percent,
    saturated_fraction,
    saturation_lines,
    type_lsb,
    verify,
)
from accelc.hls.precision import type_range
from accelc.spec import TensorSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

FIXED_18_4 = list(type_range("fixed<18,4,RND,SAT>"))  # [-8, 8 - 2^-14]
LSB = 2.0**-14

# ---------------------------------------------------------------- the fraction, on synthetic arrays


@pytest.mark.parametrize(("hls_type", "lsb"), [("fixed<18,4>", 2.0**-14), ("fixed<18,0>", 2.0**-18),
                                               ("fixed<8,-2>", 2.0**-10), ("ufixed<8,0>", 2.0**-8),
                                               ("ufixed<1,1>", 1.0), ("fixed<16,6>", 2.0**-10), ("int<8>", 1.0)])
def test_type_lsb_from_the_range(hls_type: str, lsb: float) -> None:
    assert type_lsb(*type_range(hls_type)) == lsb
    lo, hi = type_range(hls_type)
    if lo < 0:
        assert type_lsb(-hi, hi) == lsb  # symmetric saturation (SAT_SYM) holds [-hi, hi]


def test_clipped_values_count_where_the_reference_lies_beyond_the_limit() -> None:
    lo, hi = FIXED_18_4
    reference = np.array([0.5, -3.0, 9.0, -20.0, 100.0, 2.0, hi, lo, hi + LSB / 2, 7.0])
    traced = np.clip(reference, lo, hi)  # what a SAT type makes of them
    # 9, -20 and 100 are clipped; hi and lo themselves, and a value within an lsb of hi, are not saturation
    assert saturated_fraction(traced, FIXED_18_4, reference) == pytest.approx(3 / 10)
    # at a limit only because the fixed-point path drifted there, with the reference inside: not counted
    assert saturated_fraction(np.array([hi, lo]), FIXED_18_4, np.array([7.5, -7.5])) == 0.0
    # the limit on the other side from the reference is not this clipping either
    assert saturated_fraction(np.array([lo]), FIXED_18_4, np.array([9.0])) == 0.0
    # within half an lsb of a limit is at it (traced values are multiples of the lsb, stored as float32)
    assert saturated_fraction(np.float32([hi - LSB / 4]), FIXED_18_4, np.array([50.0])) == 1.0
    assert saturated_fraction(np.array([hi - LSB]), FIXED_18_4, np.array([50.0])) == 0.0
    # shapes need only agree in size (a channels-last trace against its reshaped reference)
    assert saturated_fraction(traced.reshape(2, 5), FIXED_18_4, reference.reshape(5, 2)) == pytest.approx(0.3)


def test_without_a_reference_the_trace_alone_decides() -> None:
    lo, hi = FIXED_18_4
    assert saturated_fraction(np.array([lo, hi, 0.0, 1.0]), FIXED_18_4) == 0.5
    unsigned = list(type_range("ufixed<8,0,RND,SAT>"))  # [0, 1 - 2^-8]: 0 is an ordinary value (a ReLU's)
    assert saturated_fraction(np.array([0.0, 0.0, 0.5, unsigned[1]]), unsigned) == 0.25
    # with the reference, a ReLU's zeros are not clipping, negatives sent to 0 are
    assert saturated_fraction(np.array([0.0, 0.0]), unsigned, np.array([0.0, -0.5])) == 0.5


def test_no_limits_or_no_values_give_no_figure() -> None:
    assert saturated_fraction(np.ones(4), None) is None
    assert saturated_fraction(np.zeros(0), FIXED_18_4) is None


@pytest.mark.parametrize(("fraction", "text"), [(0.0, "0 %"), (0.031, "3.1 %"), (1.0, "100 %"), (0.5, "50 %"),
                                                 (0.00004, "0.004 %"), (0.000123, "0.012 %")])
def test_percent(fraction: float, text: str) -> None:
    assert percent(fraction) == text


# ---------------------------------------------------------------- where the limits come from


def test_layer_limits_prefer_the_lowerings_record() -> None:
    target = {"layer_range": {"Conv2D_c": [-8.0, 7.5], "relu": [-4.0, 3.75], "other": [-1.0, 0.5]},
              "precision": {"c": {"result": "fixed<18,2,RND,SAT>"}}}
    assert layer_limits(target, ["Conv2D_c", "relu", "absent"]) == {"Conv2D_c": [-8.0, 7.5], "relu": [-4.0, 3.75]}


def test_layer_limits_from_the_precision_of_an_older_artifact() -> None:
    precision = {
        "c": {"result": "fixed<18,4,RND,SAT>", "accum": "fixed<26,8,TRN,WRAP>"},  # hls4ml prefixes: Conv2D_c
        "relu": {"result": "ap_fixed<10,3,AP_RND,AP_SAT>"},
        "sym": {"result": "fixed<8,3,TRN,SAT_SYM,0>"},
        "wrap": {"result": "fixed<16,6>"},  # hls4ml's default overflow wraps: a clipped value is not at a limit
        "zero": {"result": "fixed<16,6,RND,SAT_ZERO>"},
        "flat": {"result": "auto"},
    }
    limits = layer_limits({"precision": precision}, ["Conv2D_c", "relu", "sym", "wrap", "zero", "flat", "none"])
    assert limits == {"Conv2D_c": FIXED_18_4, "relu": [-4.0, 4.0 - 2.0**-7], "sym": [-(4.0 - 2.0**-5), 4.0 - 2.0**-5]}
    assert layer_limits({}, ["x"]) == {}


# ---------------------------------------------------------------- per layer and in verify()


def test_per_layer_rows_carry_the_fraction_and_the_limits() -> None:
    layers = [{"name": "Dense_fc", "shape": [4], "onnx_node": "fc"}, {"name": "out", "shape": [4], "onnx_node": "o"}]
    ref = {"fc": np.array([[1.0, 20.0, -30.0, 2.0]]), "o": np.array([[1.0, 2.0, 3.0, 4.0]])}
    traced = {"Dense_fc": np.clip(ref["fc"], *FIXED_18_4), "out": ref["o"]}
    rows = per_layer_errors(layers, traced, ref, {"Dense_fc": FIXED_18_4})
    assert [(r.saturated, r.limits) for r in rows] == [(0.5, FIXED_18_4), (None, None)]
    assert [r.saturated for r in per_layer_errors(layers, traced, ref)] == [None, None]  # no limits known


W = np.diag([1.0, 1.0, 1.0, 1.0]).astype(np.float32)


def _artifact(tmp_path: Path, layer_range: dict) -> Artifact:
    """x -> fc (x @ 4 I) -> relu; the fake trace clips each layer at its `layer_range` the way SAT types do."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"), helper.make_node("Relu", ["h"], ["y"], name="relu")],
        "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [numpy_helper.from_array(4 * W, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / MODEL)
    manifest = {"format": FORMAT_VERSION, "inputs": [TensorSpec("x", (1, 4), layout="NC").to_dict()],
                "outputs": [TensorSpec("y", (1, 4), layout="NC").to_dict()],
                "target": {"name": "fpga", "options": {}, "input_range": [[-4.0, 4.0 - 2.0**-14]],
                           "layer_range": layer_range, "precision_source": "random"}}

    class Runner:
        description = "fake"
        trace_layers = [{"name": "Dense_fc", "shape": [4], "onnx_node": "fc"},
                        {"name": "relu", "shape": [4], "onnx_node": "relu"}]

        def run(self, inputs):
            return self.trace(inputs)[0]

        def trace(self, inputs):
            x = np.clip(inputs[0], *manifest["target"]["input_range"][0])
            h = np.clip(x @ (4 * W), *layer_range.get("Dense_fc", (-np.inf, np.inf)))
            y = np.clip(np.maximum(h, 0), *layer_range.get("relu", (-np.inf, np.inf)))
            return [y], {"Dense_fc": h, "relu": y}

    return Artifact(tmp_path, manifest, _runner=Runner())


def test_verify_names_the_first_saturating_layer_and_the_inputs(tmp_path: Path) -> None:
    limits = {"Dense_fc": FIXED_18_4, "relu": FIXED_18_4}
    art = _artifact(tmp_path, limits)
    # fc (4 x): 2 -4 6 10 | 12 -20 0.4 0.8 in float; 10, 12 and -20 (-16 after the input's clip) go beyond +-8
    x = np.array([[0.5, -1.0, 1.5, 2.5], [3.0, -5.0, 0.1, 0.2]], np.float32)
    report = verify(art, x)
    assert [(r.layer, r.saturated) for r in report.per_layer] == [("Dense_fc", 0.375), ("relu", 0.25)]
    assert report.first_saturating == "Dense_fc"
    assert report.inputs_saturated == {"x": pytest.approx(1 / 8)}  # -5 is beyond the input's [-4, 4)
    d = report.to_dict()
    assert d["first_saturating"] == "Dense_fc" and d["per_layer"][0]["saturated"] == 0.375
    assert d["per_layer"][0]["limits"] == FIXED_18_4 and d["inputs_saturated"] == {"x": 0.125}
    lines = saturation_lines(report, art.manifest)
    assert lines[0].startswith("input 'x' saturates (12.5 % of its values beyond [-4, 3.99994]")
    assert lines[1].startswith("layer Dense_fc saturates (37.5 % of its values at its type's limits [-8, 7.99994]): "
                               "its type was sized from seeded N(0,1) inputs")
    assert lines[1].endswith("; recompile with calibration data of the real range "
                             "(--calibration/--dataset/--input-range)")

    quiet = verify(art, x / 4)  # all within every range
    assert [r.saturated for r in quiet.per_layer] == [0.0, 0.0]
    assert quiet.first_saturating is None and quiet.inputs_saturated == {"x": 0.0}
    assert saturation_lines(quiet, art.manifest) == []


def test_verify_leaves_wrapping_or_unknown_types_without_a_figure(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    art = _artifact(tmp_path / "a", {"relu": FIXED_18_4})
    report = verify(art, np.full((1, 4), 3.0, np.float32))  # fc: 12, beyond +-8, but its type is not known here
    assert [r.saturated for r in report.per_layer] == [None, 1.0]  # relu: 12 clipped to hi, all four
    assert report.first_saturating == "relu"
    none = verify(_artifact(tmp_path / "b", {}), np.full((1, 4), 3.0, np.float32))
    assert [r.saturated for r in none.per_layer] == [None, None] and none.first_saturating is None


def test_saturation_lines_for_a_user_precision() -> None:
    row = LayerError("Dense_fc", "fc", [4], 1.0, 1.0, 0.5, True, 0.031, [-32.0, 31.9990234375])
    report = FidelityReport(1, 1.0, 1.0, 0.9, None, per_layer=[row], first_saturating="Dense_fc")
    manifest = {"inputs": [], "target": {"precision_source": "user"}}
    (line,) = saturation_lines(report, manifest)
    assert "(3.1 % of its values at its type's limits [-32, 31.999])" in line
    assert "sized from the blanket --precision type given at compile" in line and "more integer bits" in line


# ---------------------------------------------------------------- one real fpga compile


@pytest.fixture(scope="module")
def cnn_fpga(tmp_path_factory) -> Artifact:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 10)).eval()
    return accelc.compile(net, target="fpga", input_shape=(1, 1, 8, 8), out=tmp_path_factory.mktemp("sat") / "cnn")


@pytest.mark.slow
def test_fpga_inputs_beyond_random_ranges_saturate_at_the_first_conv(cnn_fpga: Artifact) -> None:
    art = cnn_fpga
    assert art.manifest["target"]["precision_source"] == "random"  # ranges from N(0,1): no calibration data
    traced = [t["name"] for t in art.runner.trace_layers]
    layer_range = art.manifest["target"]["layer_range"]
    assert set(traced) <= set(layer_range)  # every traced layer's (saturating) result type is recorded
    for bounds in layer_range.values():
        assert bounds[0] < 0 < bounds[1] and type_lsb(*bounds) > 0

    big = 10 * np.random.default_rng(3).standard_normal((16, 1, 8, 8)).astype(np.float32)
    report = verify(art, big)
    conv = report.per_layer[0]
    assert conv.layer.startswith("Conv2D_") and conv.onnx_node.endswith("Conv")
    assert report.first_saturating == conv.layer
    assert 0.005 < conv.saturated < 0.5 and conv.limits == layer_range[conv.layer]
    assert all(r.saturated is not None for r in report.per_layer)
    assert report.inputs_saturated["input"] > 0.2  # the input's type holds about +-8: most of 10 N(0,1) is beyond
    assert any(line.startswith(f"layer {conv.layer} saturates (") for line in saturation_lines(report, art.manifest))

    normal = verify(art, np.random.default_rng(7).standard_normal((16, 1, 8, 8)).astype(np.float32))
    assert [r.saturated for r in normal.per_layer] == [0.0] * len(normal.per_layer)
    assert normal.first_saturating is None and normal.inputs_saturated == {"input": 0.0}
    assert saturation_lines(normal, art.manifest) == []
