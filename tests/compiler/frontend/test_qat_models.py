"""The quantization-aware fixtures (tests/_qat_models.py) build from the real tools, and qonnx's executor, the
reference semantics for QONNX files, classifies digits with them well above chance. Compiling them with accelc is
tested where their loading and lowering land (issue 16)."""

from __future__ import annotations

import _qat_models as qat
import numpy as np
import onnx
import pytest

pytestmark = pytest.mark.slow  # each trains and exports a model: seconds each on the shared cores

QONNX_DOMAINS = {"qonnx.custom_op.general", qat.FINN_DOMAIN}

# model -> (custom ops its file must hold, executor accuracy floor on the digits test split)
EXPECTED = {
    "tfc_1w1a": ({"BipolarQuant"}, 0.5),
    "tfc_1w2a": ({"BipolarQuant", "Quant"}, 0.8),
    "tfc_2w2a": ({"Quant"}, 0.8),
    "mlp_3bit_bn": ({"Quant"}, 0.8),
    "cnn_4bit": ({"Quant"}, 0.8),
    "cnn_trunc_avgpool": ({"Quant", "Trunc"}, 0.8),
    "mlp_input_scaling": ({"Quant"}, 0.8),
    "qkeras_mlp": ({"Quant"}, 0.8),
    "qkeras_wide": ({"Quant"}, 0.9),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fixture_builds_and_executor_classifies(name):
    m = qat.ALL_MODELS[name]()
    assert m.path.exists()
    proto = onnx.load(str(m.path))
    custom = {n.op_type for n in proto.graph.node if n.domain in QONNX_DOMAINS}
    ops, floor = EXPECTED[name]
    assert custom == ops
    acc = qat.executor_accuracy(m)
    assert acc > floor, f"{name}: executor accuracy {acc:.3f} (torch {m.accuracy:.3f})"
    assert abs(acc - m.accuracy) < 0.05  # the file computes the trained model


def test_qkeras_graph_is_written_as_the_tools_write_it():
    proto = onnx.load(str(qat.qkeras_mlp().path))
    assert {(o.domain, o.version) for o in proto.opset_import} == {("", 11)}  # no import for the FINN domain
    quants = [n for n in proto.graph.node if n.op_type == "Quant"]
    assert {n.domain for n in quants} == {qat.FINN_DOMAIN}
    inits = {i.name for i in proto.graph.initializer}
    quantized = {n.input[0] for n in quants if n.input[0] in inits}
    assert {"dense1_kernel", "dense1_bias", "dense2_kernel", "dense2_bias"} <= quantized  # weights AND biases
    assert [n.op_type for n in proto.graph.node if n.domain == ""].count("Relu") == 1


def test_wide_qkeras_graph_has_the_high_precision_widths():
    proto = onnx.load(str(qat.qkeras_wide().path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    quants = {n.input[0]: n for n in proto.graph.node if n.op_type == "Quant"}
    bits = {src: float(inits[n.input[3]]) for src, n in quants.items()}
    rounding = {src: onnx.helper.get_attribute_value(next(a for a in n.attribute if a.name == "rounding_mode"))
                for src, n in quants.items()}
    assert all(bits[f"dense{i}_{k}"] == 12 for i in (1, 2, 3) for k in ("kernel", "bias"))
    assert bits["act1_relu"] == bits["act2_relu"] == 10
    assert (rounding["act1_relu"], rounding["act2_relu"]) == (b"FLOOR", b"ROUND")
    scales = [float(inits[n.input[1]]) for n in quants.values()]
    assert all(float(np.log2(s)).is_integer() for s in scales)  # power-of-2 scales, as QKeras writes them


def test_brevitas_model_is_cached_per_session():
    assert qat.tfc_1w1a() is qat.tfc_1w1a()
