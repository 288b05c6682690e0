"""The depthwise pass: KxK conv -> depthwise KxK (multiplier m) + pointwise 1x1, within an error budget."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand, run
from onnx import helper

from accelc.errors import PassError
from accelc.passes import PassContext, create_pass, run_passes
from accelc.transforms.compress.conv_factorization import factorize


def _rank_m_weight(c_out: int, c_in: int, k: int, m: int, seed: int = 0) -> np.ndarray:
    """Per input channel, W[:, i] is exactly rank m (a C_out x k*k product of two thin matrices)."""
    rng = np.random.default_rng(seed)
    w = np.stack([rng.standard_normal((c_out, m)) @ rng.standard_normal((m, k * k)) for _ in range(c_in)], axis=1)
    return w.reshape(c_out, c_in, k, k).astype(np.float32)


def _conv_model(weight: np.ndarray, out_hw: int = 8, **attrs):
    c_out, c_in, k, _ = weight.shape
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv_Conv", kernel_shape=[k, k], **attrs),
             helper.make_node("Relu", ["c"], ["y"], name="Relu")]
    inits = [const("w", weight), const("b", rand(c_out, seed=7))]
    proto = make(nodes, {"x": ["N", c_in, 10, 10]}, {"y": ["N", c_out, out_hw, out_hw]}, inits)
    return proto, ir.from_proto(proto)


@pytest.mark.parametrize("out_hw, attrs", [(8, {}), (5, {"strides": [2, 2], "pads": [1, 0, 1, 2]}),
                                           (6, {"dilations": [2, 2]})])
def test_exact_when_each_input_channel_is_rank_m(out_hw, attrs):
    proto, model = _conv_model(_rank_m_weight(16, 4, 3, m=2), out_hw, **attrs)
    record = run_passes(model, ["depthwise:multiplier=2,tol=1e-4"], PassContext())[0]
    layer = record.stats["layers"]["conv_Conv"]
    assert layer["status"] == "rewritten" and layer["multiplier"] == 2
    assert ops(model) == ["Conv", "Conv", "Relu"]
    dw, pw = list(model.graph)[:2]
    assert dw.attributes["group"].value == 4 and dw.inputs[1].const_value.shape == (8, 1, 3, 3)
    assert pw.name == "conv_Conv" and pw.inputs[1].const_value.shape == (16, 8, 1, 1)
    assert layer["macs_after"] < layer["macs_before"]
    assert record.stats["after"]["macs"] < record.stats["before"]["macs"]
    assert_same_outputs(proto, model, {"x": rand(3, 4, 10, 10, seed=3)}, atol=1e-4)


def test_auto_multiplier_finds_the_smallest_exact_rank():
    proto, model = _conv_model(_rank_m_weight(16, 4, 3, m=2))
    record = run_passes(model, ["depthwise:tol=1e-4"], PassContext())[0]
    assert record.stats["layers"]["conv_Conv"]["multiplier"] == 2
    x = rand(2, 4, 10, 10, seed=4)
    np.testing.assert_allclose(run(model, {"x": x})[0], run(proto, {"x": x})[0], atol=1e-4)


def test_random_conv_with_a_tight_tol_is_declined_and_left_alone():
    proto, model = _conv_model(rand(16, 4, 3, 3, seed=11))
    record = run_passes(model, ["depthwise:tol=0.001"], PassContext())[0]
    layer = record.stats["layers"]["conv_Conv"]
    assert layer["status"] == "declined" and "tol" in layer["reason"]
    assert not record.modified and ops(model) == ["Conv", "Relu"]
    assert any("conv_Conv left alone" in w for w in record.warnings)


def test_a_multiplier_that_saves_no_macs_is_declined():
    # 16 x 4 x 3x3: m=9 costs 4*9*9 + 16*4*9 MACs per pixel > 16*4*9
    _, model = _conv_model(_rank_m_weight(16, 4, 3, m=2))
    layer = run_passes(model, ["depthwise:multiplier=9"], PassContext())[0].stats["layers"]["conv_Conv"]
    assert layer["status"] == "declined" and "does not reduce MACs" in layer["reason"]


def test_factorize_is_the_best_rank_m_fit():
    w = rand(8, 3, 3, 3, seed=5)
    errors = [factorize(w, m).weight_error for m in range(1, 9)]
    assert all(a >= b - 1e-9 for a, b in zip(errors, errors[1:]))  # more filters never fit worse
    assert errors[-1] < 1e-6  # m = min(C_out, K) is exact


def test_error_is_measured_on_calibration_data():
    proto, model = _conv_model(rand(16, 4, 3, 3, seed=11))
    calib = rand(8, 4, 10, 10, seed=2)
    record = run_passes(model, ["depthwise:tol=0.9"], PassContext(calibration=calib))[0]
    assert record.stats["fidelity"]["data"] == "calibration"
    assert record.stats["layers"]["conv_Conv"]["error"] <= 0.9


@pytest.mark.parametrize("spec, message", [("depthwise:tol=0", "tol must be"),
                                           ("depthwise:multiplier=two", "multiplier must be")])
def test_bad_options_are_refused(spec, message):
    with pytest.raises(PassError, match=message):
        create_pass(spec)


def test_exclude_keeps_a_conv_and_an_unknown_name_is_an_error():
    _, model = _conv_model(_rank_m_weight(16, 4, 3, m=2))
    record = run_passes(model, ["depthwise:tol=1e-4,exclude=conv"], PassContext())[0]
    assert record.stats["layers"]["conv_Conv"] == {"status": "excluded"} and not record.modified
    with pytest.raises(PassError, match="depthwise: exclude: no prunable layer named 'conv9'"):
        run_passes(_conv_model(_rank_m_weight(16, 4, 3, m=2))[1], ["depthwise:exclude=conv9"], PassContext())


def test_a_conv_that_is_the_graph_output_is_rewritten_and_keeps_its_output_name():
    weight = _rank_m_weight(16, 4, 3, m=2)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv_Conv", kernel_shape=[3, 3])]
    proto = make(nodes, {"x": ["N", 4, 10, 10]}, {"y": ["N", 16, 8, 8]}, [const("w", weight), const("b", rand(16))])
    model = ir.from_proto(proto)
    record = run_passes(model, ["depthwise:tol=1e-4"], PassContext())[0]
    assert record.stats["layers"]["conv_Conv"]["status"] == "rewritten"
    assert [v.name for v in model.graph.outputs] == ["y"] and ops(model) == ["Conv", "Conv"]
    assert_same_outputs(proto, model, {"x": rand(2, 4, 10, 10, seed=3)}, atol=1e-4)
