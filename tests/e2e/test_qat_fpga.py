"""Quantization-aware models from the real tools compile for fpga and compute qonnx's executor's numbers: binary
networks (BipolarQuant weights and activations, Brevitas' TFC) within float32 rounding of the scales, and graphs
whose every value sits on a power-of-2 grid (QKeras-style) bit for bit; `verify` reports the artifact against
the executor on the file as given."""

from __future__ import annotations

import _qat_models as qat
import numpy as np
import pytest

import accelc

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")]


def _compile(m: qat.QATModel, tmp_path):
    return accelc.compile(m.path, target="fpga", out=tmp_path / "fpga", calibration="digits")


@pytest.mark.parametrize("name", ["tfc_1w1a", "tfc_1w2a"])
def test_binary_networks_match_the_executor(name: str, tmp_path) -> None:
    """hls4ml 1.3's Dense of xnor weights and xnor inputs gives every output unit the same value (raw hls4ml
    classifies 10 % right); accelc gives it 2-bit weights, so each Dense is exact. What is left is float32: the
    executor's sums of +-scale terms and the fixed-point scales of the rescale layers (measured 3.8e-6)."""
    pytest.importorskip("brevitas")
    m = qat.ALL_MODELS[name]()
    art = _compile(m, tmp_path)
    x, y = qat.digits(m.input_shape, "test")
    want = qat.executor_predict(m.path, x)
    got = np.asarray(art.predict(x)).reshape(want.shape)
    assert np.max(np.abs(got - want)) <= 1e-4
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.998
    assert np.mean(got.argmax(1) == y) == pytest.approx(np.mean(want.argmax(1) == y), abs=0.005)
    report = accelc.verify(art, x[:64])
    assert report.source is not None and report.source["runner"] == "qonnx executor"
    assert report.source["max_abs_err"] <= 1e-4
    # the merged BatchNorm + binary activation layers hold 0/1 codes: not compared with the float BatchNorm
    assert all(row.rel_err < 0.01 for row in report.per_layer)


def test_truncated_average_pool_matches_the_executor(tmp_path) -> None:
    """Brevitas' TruncAvgPool2d (AveragePool -> Trunc, FLOOR, back to 4 bits) on a 4-bit CNN: the Trunc is lowered as
    a FLOOR Quant at its output scale, the pool averages the integers exactly, and hls4ml's removal of a scale-1
    ApplyAlpha that casts (the Trunc's integer type) is kept out (accelc.hls.hls4ml_fixes): before, 25 % of the
    rows were off by up to 3."""
    pytest.importorskip("brevitas")
    m = qat.cnn_trunc_avgpool()
    art = _compile(m, tmp_path)
    x, y = qat.digits(m.input_shape, "test")
    want = qat.executor_predict(m.path, x)
    got = np.asarray(art.predict(x)).reshape(want.shape)
    assert np.max(np.abs(got - want)) <= 1e-4
    assert np.mean(got.argmax(1) == y) == pytest.approx(np.mean(want.argmax(1) == y), abs=0.003)


@pytest.mark.parametrize("name", ["qkeras_mlp", "qkeras_wide"])
def test_power_of_two_grids_are_bit_exact(name: str, tmp_path) -> None:
    """QKeras-style QONNX (FINN domain, no opset import, opset 11) on power-of-2 grids — 4 to 8-bit, and 10 to
    12-bit with a FLOOR and a ROUND activation quantizer — so float32 and ap_fixed compute the same numbers: the
    emulator equals the executor. (Before the ReLUs took their input's type, the 12-bit model's ReLU rounded the
    exact Dense sum to 13 fraction bits ahead of the FLOOR quantizer: 15 % of outputs off, by up to 0.04.)"""
    m = qat.ALL_MODELS[name]()
    art = _compile(m, tmp_path)
    x, _ = qat.digits(m.input_shape, "test")
    want = qat.executor_predict(m.path, x)
    np.testing.assert_array_equal(np.asarray(art.predict(x)).reshape(want.shape), want)
    report = accelc.verify(art, x[:64])
    assert report.source["exact_fraction"] == 1.0


def _one_layer(rounding_w: str, rounding_a: str):
    """x -> Quant(8 bits, 2^-4) -> MatMul(Quant(W, 4 bits, 2^-3, rounding_w)) -> Quant(12 bits, 2^-6, rounding_a),
    FINN domain without its import, opset 11 (every value on a power-of-2 grid)."""
    from onnx import TensorProto, helper, numpy_helper

    def t(name, v):
        return numpy_helper.from_array(np.asarray(v, np.float32), name)

    finn = "finn.custom_op.general"
    rng = np.random.default_rng(5)
    inits = [t("W", rng.standard_normal((16, 4))), t("s_in", 2**-4), t("s_w", 2**-3), t("s_out", 2**-6), t("z", 0.0),
             t("b8", 8), t("b4", 4), t("b12", 12)]
    nodes = [helper.make_node("Quant", ["x", "s_in", "z", "b8"], ["xq"], name="q_in", domain=finn, signed=1,
                              narrow=0, rounding_mode="ROUND"),
             helper.make_node("Quant", ["W", "s_w", "z", "b4"], ["wq"], name="q_w", domain=finn, signed=1, narrow=1,
                              rounding_mode=rounding_w),
             helper.make_node("MatMul", ["xq", "wq"], ["h"], name="mm"),
             helper.make_node("Quant", ["h", "s_out", "z", "b12"], ["y"], name="q_out", domain=finn, signed=1,
                              narrow=0, rounding_mode=rounding_a)]
    graph = helper.make_graph(nodes, "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    return model


def test_any_weight_rounding_and_floor_activations_on_fpga_are_bit_exact(tmp_path) -> None:
    """A CEIL (or UP, HALF_DOWN, ...) weight quantizer has no ap_fixed mode in hls4ml's handler, but its values are
    constants: accelc computes them as qonnx does and hands hls4ml a ROUND Quant of them. A 12-bit FLOOR activation
    quantizer is AP_TRN. Every value on a power-of-2 grid: equal to the executor bit for bit."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    from accelc.frontend.qonnx import normalize_domains

    model = _one_layer("CEIL", "FLOOR")
    path = tmp_path / "ceil.onnx"
    onnx.save(model, path)
    x = (np.random.default_rng(6).standard_normal((64, 16)) * 3).astype(np.float32)
    art = accelc.compile(path, target="fpga", out=tmp_path / "fpga", calibration=x)
    wrapper = ModelWrapper(normalize_domains(model)).transform(InferShapes())
    want = np.concatenate([execute_onnx(wrapper, {"x": r[None]})["y"] for r in x])
    np.testing.assert_array_equal(np.asarray(art.predict(x)).reshape(want.shape), want)


def test_an_activation_rounding_hls4ml_cannot_lower_is_refused_by_name(tmp_path) -> None:
    import onnx

    from accelc.errors import UnsupportedOpError

    path = tmp_path / "ceil_act.onnx"
    onnx.save(_one_layer("ROUND", "HALF_UP"), path)
    with pytest.raises(UnsupportedOpError, match=r"Quant_HALF_UP_s.*q_out.*rounding_mode=HALF_UP"):
        accelc.compile(path, target="fpga", out=tmp_path / "fpga", input_range=(-4, 4))
    accelc.compile(path, target="cpu", out=tmp_path / "cpu", input_range=(-4, 4))  # cpu computes it
