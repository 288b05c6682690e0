"""The quantize pass: int8 dynamic / static QDQ and fp16 through onnxruntime.quantization, measured;
fixed-point widths recorded for the fpga target."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from _transform_models import const, make, rand, run
from onnx import helper

from accelc.errors import PassError
from accelc.passes import PassContext, apply_passes, create_pass
from accelc.transforms.compress.quantize import FPGA_WIDTH_KEY


def _mlp(softmax: bool = False) -> onnx.ModelProto:
    """16 -> 32 relu -> 10 (Gemm), optionally a Softmax on the output."""
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1_Gemm", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="Relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["z" if softmax else "y"], name="fc2_Gemm", transB=1)]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["y"], name="Softmax", axis=1))
    inits = [const("w1", rand(32, 16, seed=1) * 0.3), const("b1", rand(32, seed=2) * 0.1),
             const("w2", rand(10, 32, seed=3) * 0.3), const("b2", rand(10, seed=4) * 0.1)]
    return make(nodes, {"x": ["N", 16]}, {"y": ["N", 10]}, inits)


def _quantize(spec: str, proto: onnx.ModelProto, target: str | None = "cpu", calibration=None):
    context = PassContext(calibration=calibration, target=target)
    model, records = apply_passes(ir.from_proto(proto), [spec], context)
    return model, records[0]


def _ops(model: ir.Model) -> set[str]:
    return {n.op_type for n in model.graph}


def test_int8_static_is_qdq_calibrated_and_measured():
    calib = rand(64, 16, seed=5)
    model, record = _quantize("quantize:int8", _mlp(), calibration=calib)
    ops = _ops(model)
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert not ops & {"QLinearMatMul", "QGemm", "MatMulInteger", "ConvInteger", "QLinearConv"}  # QDQ, not QOperator
    assert record.stats["fidelity"]["data"] == "calibration"
    assert record.stats["fidelity"]["top1_agreement"] >= 0.9
    for row in record.stats["speed"]:  # the ratio is the one its own timings give
        # Both times are rounded to 4 decimals (ms) and the ratio to 3: at a few µs per batch the rounding of
        # the times alone moves the quotient by several %, so check the range the rounded figures allow.
        e = 5e-5
        low = (row["quantized_ms"] - e) / (row["float_ms"] + e)
        high = (row["quantized_ms"] + e) / max(row["float_ms"] - e, 1e-9)
        assert low - 5e-4 <= row["ratio"] <= high + 5e-4, row
        assert any(f"batch {row['batch']}" in w for w in record.warnings) == (row["ratio"] > 1)
    x = calib[:8]  # inside the calibrated ranges: what is left is int8 rounding, a few % of the output scale
    ref = run(_mlp(), {"x": x})[0]
    np.testing.assert_allclose(run(model, {"x": x})[0], ref, atol=0.05 * np.abs(ref).max())


def test_int8_static_without_calibration_is_refused_not_randomly_calibrated():
    with pytest.raises(PassError, match="needs calibration data"):
        _quantize("quantize:int8", _mlp())


def test_output_softmax_stays_float():
    model, record = _quantize("quantize:int8", _mlp(softmax=True), calibration=rand(32, 16, seed=5))
    assert record.stats["excluded"] == ["Softmax"]
    softmax = next(n for n in model.graph if n.op_type == "Softmax")
    assert softmax.outputs[0].uses() == [] or all(u.node.op_type != "QuantizeLinear" for u in softmax.outputs[0].uses())


def test_int8_dynamic_uses_integer_matmuls_and_is_refused_for_cuda():
    model, record = _quantize("quantize:int8-dynamic", _mlp())
    assert "MatMulInteger" in _ops(model) or "DynamicQuantizeLinear" in _ops(model)
    assert record.stats["size_bytes"]["after"] < record.stats["size_bytes"]["before"]
    with pytest.raises(PassError, match="CUDA provider runs on the CPU"):
        create_pass("quantize:int8-dynamic", PassContext(target="cuda"))


def test_fp16_halves_the_weights_and_keeps_float_io():
    model, record = _quantize("quantize:fp16", _mlp())
    proto = ir.to_proto(model)
    assert {i.data_type for i in proto.graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert record.stats["fidelity"]["max_abs_err"] < 1e-2
    onnx.checker.check_model(proto, full_check=True)


def test_fixed_widths_are_recorded_for_fpga_only():
    model, record = _quantize("quantize:fixed8", _mlp(), target="fpga")
    assert model.metadata_props[FPGA_WIDTH_KEY] == "8" and record.stats["width"] == 8
    assert create_pass("quantize:fixed:12", PassContext(target="fpga")).options == {"mode": "fixed", "width": 12}
    assert create_pass("quantize:fixed16").options["width"] == 16
    with pytest.raises(PassError, match="for --target fpga"):
        create_pass("quantize:fixed8", PassContext(target="cpu"))
    with pytest.raises(PassError, match="fpga takes fixed-point widths"):
        create_pass("quantize:int8", PassContext(target="fpga"))


@pytest.mark.parametrize("spec, message", [("quantize", "mode must be"), ("quantize:int4", "mode must be"),
                                           ("quantize:fixed:99", "width must be"),
                                           ("quantize:int8,calibrate=magic", "calibrate must be")])
def test_bad_options_are_refused(spec, message):
    with pytest.raises(PassError, match=message):
        create_pass(spec)


def test_unknown_exclusion_is_an_error():
    with pytest.raises(PassError, match="exclude names no node"):
        _quantize("quantize:int8,exclude=nope", _mlp(), calibration=rand(8, 16))


@pytest.mark.parametrize("budget", [0.0, 1.01])
def test_auto_int8_keeps_only_a_variant_that_is_faster_and_within_budget(budget):
    """Timing decides which variant wins, so the test checks the decision against the pass's own measurements."""
    model, record = _quantize(f"quantize:auto-int8,min_agreement={budget}", _mlp(), calibration=rand(64, 16, seed=5))
    stats = record.stats
    assert stats["candidates"] and all(c["variant"] == "int8 static QDQ" for c in stats["candidates"])
    good = [c for c in stats["candidates"] if c["within_budget"] and c["worst_ratio"] < 1.0]
    if budget > 1:  # an unreachable budget: nothing may be chosen, the model stays float
        assert not good
    if good:
        best = min(good, key=lambda c: c["worst_ratio"])
        assert stats["chosen"] == {"variant": best["variant"], "ops": best["ops"]} and record.modified
        assert "QuantizeLinear" in _ops(model)
    else:
        assert stats["chosen"] is None and not record.modified
        assert "QuantizeLinear" not in _ops(model)
        assert any("no int8 variant" in w for w in record.warnings)


def test_auto_fixed_point_search_narrows_layers_within_the_budget():
    import json

    from accelc.transforms.compress.fixed_point_search import fake_quantized, layer_widths
    from accelc.transforms.compress.quantize import FPGA_WIDTHS_KEY

    calib = rand(128, 16, seed=5)
    model, record = _quantize("quantize:auto,min_agreement=0.95", _mlp(), target="fpga", calibration=calib)
    stats = record.stats
    assert set(stats["widths"]) == {"fc1_Gemm", "fc2_Gemm"}
    assert all(4 <= w <= 18 for w in stats["widths"].values()) and min(stats["widths"].values()) < 18
    assert stats["widths"] == {k: v + 1 for k, v in stats["searched_widths"].items()}  # one guard bit
    assert stats["bit_ops"]["after"] < stats["bit_ops"]["before"]
    widths = json.loads(model.metadata_props[FPGA_WIDTHS_KEY])
    assert widths["Relu"] == widths["fc1_Gemm"]  # a layer without weights inherits its producer's width
    # the searched widths keep the fake-quantized graph within budget on the calibration data
    from accelc.reference import Reference

    ref = Reference(_mlp())
    ranges = {k: float(np.abs(v).max()) for k, v in ref.run_all([calib]).items()}
    searched = layer_widths(_mlp(), stats["searched_widths"], 18)
    out = Reference(fake_quantized(_mlp(), searched, ranges)).run([calib])[0]
    assert np.mean(out.argmax(1) == ref.run([calib])[0].argmax(1)) >= 0.95
    # and at 18 bits the fake quantization is all but exact
    wide = Reference(fake_quantized(_mlp(), dict.fromkeys(widths, 18), ranges)).run([calib])[0]
    np.testing.assert_allclose(wide, ref.run([calib])[0], atol=1e-2)


def test_auto_fixed_point_needs_calibration_and_the_fpga_target():
    with pytest.raises(PassError, match="calibration data"):
        _quantize("quantize:auto", _mlp(), target="fpga")
    with pytest.raises(PassError, match="for --target fpga"):
        create_pass("quantize:auto", PassContext(target="cpu"))
