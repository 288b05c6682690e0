"""The prune pass in unstructured mode: realised sparsity, exclusions, overrides, stats and warnings."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import const, make, rand
from onnx import TensorProto, helper, numpy_helper

from accelc.errors import PassError
from accelc.passes import PassContext, create_pass, run_passes


def _cnn():
    """conv1 (8x3x3x3) -> relu -> conv2 (16x8x3x3) -> flatten -> fc (10x(16*4*4))."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1_Conv", kernel_shape=[3, 3], pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"], name="Relu"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2_Conv", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1] * 4),
        helper.make_node("Flatten", ["c2"], ["f"], name="Flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc_Gemm", transB=1),
    ]
    inits = [const("w1", rand(8, 3, 3, 3, seed=1)), const("b1", rand(8, seed=2)),
             const("w2", rand(16, 8, 3, 3, seed=3)), const("b2", rand(16, seed=4)),
             const("w3", rand(10, 256, seed=5)), const("b3", rand(10, seed=6))]
    return ir.from_proto(make(nodes, {"x": [1, 3, 8, 8]}, {"y": [1, 10]}, inits))


def _weights(model: ir.Model) -> dict[str, np.ndarray]:
    return {n.name: n.inputs[1].const_value.numpy() for n in model.graph if n.op_type in ("Conv", "Gemm")}


def _sparsity(w: np.ndarray) -> float:
    return 1 - np.count_nonzero(w) / w.size


def _prune(model: ir.Model, spec: str, target: str | None = None):
    return run_passes(model, [spec], PassContext(target=target))[0]


@pytest.mark.parametrize("sparsity", [0.3, 0.8])
def test_global_sparsity_is_reached_within_one_percent(sparsity):
    model = _cnn()
    record = _prune(model, f"prune:sparsity={sparsity}")
    ws = _weights(model)
    total = sum(w.size for w in ws.values())
    zeros = sum(w.size - np.count_nonzero(w) for w in ws.values())
    assert abs(zeros / total - sparsity) <= 0.01
    assert record.stats["sparsity"] == pytest.approx(zeros / total, abs=1e-4)
    assert record.modified
    assert record.stats["after"]["nonzero_params"] < record.stats["before"]["nonzero_params"]
    assert record.stats["after"]["nonzero_macs"] < record.stats["before"]["nonzero_macs"]


def test_layer_scope_prunes_each_layer_and_removes_the_smallest():
    model = _cnn()
    before = _weights(model)
    _prune(model, "prune:sparsity=0.5,scope=layer")
    for name, w in _weights(model).items():
        assert abs(_sparsity(w) - 0.5) <= 0.01, name
        kept = np.abs(before[name][w != 0])
        dropped = np.abs(before[name][w == 0])
        assert kept.min() >= dropped.max()  # magnitude order: every kept weight outweighs every dropped one
        np.testing.assert_array_equal(w[w != 0], before[name][w != 0])  # survivors unchanged


def test_exclusions_are_untouched_and_overrides_apply():
    model = _cnn()
    before = _weights(model)
    record = _prune(model, "prune:sparsity=0.9,exclude=conv1,layers=fc:0.25")
    after = _weights(model)
    np.testing.assert_array_equal(after["conv1_Conv"], before["conv1_Conv"])
    assert abs(_sparsity(after["fc_Gemm"]) - 0.25) <= 0.01
    assert abs(_sparsity(after["conv2_Conv"]) - 0.9) <= 0.01
    assert record.stats["excluded"] == ["conv1_Conv"]
    assert record.stats["layers"]["fc_Gemm"]["asked"] == 0.25


def test_fidelity_is_measured_on_calibration_data():
    model = _cnn()
    calib = rand(16, 3, 8, 8, seed=9)
    record = run_passes(model, ["prune:sparsity=0.5"], PassContext(calibration=calib))[0]
    fid = record.stats["fidelity"]
    assert fid["data"] == "calibration" and fid["samples"] == 16
    assert fid["max_abs_err"] > 0 and 0 <= fid["top1_agreement"] <= 1


def test_target_aware_warnings():
    assert any("ONNX Runtime" in w for w in _prune(_cnn(), "prune:sparsity=0.5", "cpu").warnings)
    assert any("Latency" in w for w in _prune(_cnn(), "prune:sparsity=0.5", "fpga").warnings)
    no_budget = PassContext(min_agreement=0.0)  # the fidelity budget's warnings are test_budget.py's
    assert not run_passes(_cnn(), ["prune:sparsity=0.5"], no_budget)[0].warnings


@pytest.mark.parametrize("spec, message", [
    ("prune:sparsity=1.0", "must be in [0, 1)"),
    ("prune:sparsity=0.5,ratio=0.5", "takes sparsity"),
    ("prune:mode=channel,sparsity=0.5", "takes ratio"),
    ("prune:mode=magic,sparsity=0.5", "mode must be"),
    ("prune:sparsity=0.5,scope=model", "scope must be"),
    ("prune:sparsity=0.5,bogus=1", "bogus"),
    ("prune:sparsity=0.5,layers=fc", "LAYER:VALUE"),
])
def test_bad_options_are_refused(spec, message):
    with pytest.raises(PassError, match=message.replace("[", r"\[").replace(")", r"\)")):
        create_pass(spec)


def test_unknown_layer_name_is_an_error_not_a_no_op():
    with pytest.raises(PassError, match="no prunable layer named 'conv9'"):
        _prune(_cnn(), "prune:sparsity=0.5,exclude=conv9")


def test_defaults_follow_the_design_and_nothing_pruned_is_not_modified():
    assert create_pass("prune").options == {"mode": "unstructured", "sparsity": 0.5, "scope": "global"}
    assert create_pass("prune:mode=channel").options == {"mode": "channel", "ratio": 0.5, "criterion": "l1"}
    model = _cnn()
    before = _weights(model)
    assert not _prune(model, "prune:sparsity=0").modified
    for name, w in _weights(model).items():
        np.testing.assert_array_equal(w, before[name])


def test_channel_mode_warns_about_blocked_layers_but_not_the_classifier():
    model = _cnn()
    record = _prune(model, "prune:mode=channel,ratio=0.5")
    assert "fc_Gemm" in record.stats["skipped"]  # its channels are the model's outputs: recorded ...
    assert not any("fc_Gemm" in w for w in record.warnings)  # ... but expected, so no warning
    assert record.stats["layers"]["conv1_Conv"]["channels_after"] == 4 and record.modified


def test_global_pruning_never_empties_a_layer() -> None:
    """One layer's weights 1000x smaller than the rest (as BatchNorm folding can leave them): a single global
    magnitude threshold would zero all of it; the per-layer ceiling keeps its largest 5 %."""
    from accelc.transforms.compress.magnitude_pruning import MAX_LAYER_SPARSITY, magnitude_prune

    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((16, 8)) * 1e-3).astype(np.float32)
    w2 = rng.standard_normal((16, 16)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="small"),
         helper.make_node("MatMul", ["h", "w2"], ["y"], name="large")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
        [numpy_helper.from_array(w1.T.copy(), "w1"), numpy_helper.from_array(w2, "w2")])
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    stats = magnitude_prune(model, 0.5)
    assert stats["layers"]["small"]["sparsity"] <= MAX_LAYER_SPARSITY
    assert stats["layers"]["small"]["zeros"] < stats["layers"]["small"]["weights"]
    assert stats["sparsity"] == 0.5  # the budget went to the other layer
    # layers= may still ask for more on a named layer
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    assert magnitude_prune(model, 0.5, overrides={"small": 0.99})["layers"]["small"]["sparsity"] > MAX_LAYER_SPARSITY
