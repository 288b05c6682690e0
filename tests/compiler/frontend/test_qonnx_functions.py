"""QONNX quantizers that QuantizeLinear/DequantizeLinear cannot express (BipolarQuant, 1 and 9-24 bits, every
rounding mode, zero points) load as calls of model-local functions whose bodies are qonnx's arithmetic: ONNX Runtime
computes exactly what qonnx's executor computes, ties and saturation included; the fpga target gets the QONNX node
back."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

import accelc
from accelc.frontend import load
from accelc.frontend.qonnx import QONNX_DOMAIN, normalize_domains
from accelc.frontend.qonnx_functions import (
    FUNCTION_DOMAIN,
    ROUNDING_MODES,
    as_qonnx_node,
    function_name,
    functions_to_qonnx,
    inline,
    parse_name,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

FINN = "finn.custom_op.general"
N = 64


def _t(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def one_quantizer(op: str, scale=0.25, zero=0.0, bits=4.0, **attrs) -> onnx.ModelProto:
    """x -> one QONNX quantizer (FINN domain, no opset import for it, opset 11, as qonnx's Keras converter writes)."""
    inits = [_t("s", scale)]
    if op == "Trunc":  # v2 (Brevitas): x on a 2^-4 grid of 8 bits -> 4 bits at 2^-2; v1: 8 -> 5 bits, same scale
        inits += [_t("z", zero), _t("b_in", 8.0), _t("b_out", attrs.pop("out_bits", 4.0))]
        names = ["x", "s", "z", "b_in", "s_out", "b_out"] if attrs.pop("version", 2) == 2 else \
            ["x", "s", "z", "b_in", "b_out"]
        inits.append(_t("s_out", attrs.pop("out_scale", 0.25)))
        node = helper.make_node("Trunc", names, ["y"], name="q", domain=FINN, **attrs)
    elif op == "BipolarQuant":
        node = helper.make_node("BipolarQuant", ["x", "s"], ["y"], name="q", domain=FINN)
    else:
        inits += [_t("z", zero), _t("b", bits)]
        node = helper.make_node("Quant", ["x", "s", "z", "b"], ["y"], name="q", domain=FINN,
                                **{"signed": 1, "narrow": 0, "rounding_mode": "ROUND", **attrs})
    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, N])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, N])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    return model


def executor(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    wrapper = ModelWrapper(normalize_domains(model)).transform(InferShapes())
    return np.concatenate([execute_onnx(wrapper, {"x": row[None]})["y"] for row in x])


def ort_run(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {sess.get_inputs()[0].name: row[None]})[0] for row in x])


def inputs() -> np.ndarray:
    """Ties (k + 0.5 steps, both signs), exact zeros, values far beyond the range, and ordinary ones."""
    ties = (np.arange(-N // 2, N // 2) + 0.5) * 0.25
    big = np.linspace(-1e4, 1e4, N)
    small = np.random.default_rng(0).standard_normal(N) * 0.3
    grid = np.arange(-N // 2, N // 2) * 0.25
    return np.stack([ties, big, small, grid, np.zeros(N), -ties]).astype(np.float32)


VARIANTS = ([("Quant", dict(rounding_mode=m)) for m in ROUNDING_MODES]
            + [("Trunc", dict(scale=2**-4, rounding_mode=m)) for m in ("FLOOR", "ROUND", "HALF_UP")]
            + [("Trunc", dict(scale=2**-4, signed=0, narrow=1, rounding_mode="FLOOR")),
               ("Trunc", dict(scale=0.3, out_scale=1.2, zero=2.0, rounding_mode="FLOOR")),
               ("Trunc", dict(scale=2**-4, version=1, out_bits=5.0, rounding_mode="FLOOR"))]
            + [("Quant", dict(rounding_mode="FLOOR", signed=0)), ("Quant", dict(signed=0, narrow=1)),
               ("Quant", dict(narrow=1, rounding_mode="HALF_UP")), ("Quant", dict(bits=1.0)),
               ("Quant", dict(bits=1.0, signed=0)), ("Quant", dict(bits=12.0, scale=2**-6)),
               ("Quant", dict(bits=16.0, scale=2**-8, rounding_mode="FLOOR")), ("Quant", dict(zero=3.0)),
               ("Quant", dict(bits=24.0, scale=2**-10)), ("Quant", dict(scale=0.3, rounding_mode="HALF_DOWN")),
               ("BipolarQuant", dict(scale=0.1)), ("BipolarQuant", dict(scale=1.0))])


@pytest.mark.parametrize(("op", "params"), VARIANTS, ids=[f"{o}-{p}" for o, p in VARIANTS])
def test_function_computes_what_the_executor_computes(op, params, tmp_path) -> None:
    model = one_quantizer(op, **params)
    path = tmp_path / "q.onnx"
    onnx.save(model, path)
    proto = ir.to_proto(load(path).model)
    x = inputs()
    np.testing.assert_array_equal(ort_run(proto, x), executor(model, x))  # bit for bit
    np.testing.assert_array_equal(ort_run(inline(proto), x), executor(model, x))
    assert not any(f.domain == FUNCTION_DOMAIN for f in inline(proto).functions)


def test_only_what_qdq_cannot_express_becomes_a_function(tmp_path) -> None:
    path = tmp_path / "q.onnx"
    onnx.save(one_quantizer("Quant", bits=4.0), path)
    ops = {(n.domain, n.op_type) for n in load(path).model.graph}
    assert ("", "QuantizeLinear") in ops and not any(d == FUNCTION_DOMAIN for d, _ in ops)
    onnx.save(one_quantizer("Quant", bits=12.0), path)
    ops = {(n.domain, n.op_type) for n in load(path).model.graph}
    assert ops == {(FUNCTION_DOMAIN, "Quant_ROUND_s")}
    assert isinstance(load(path).model, ir.Model)


def test_names_round_trip() -> None:
    for mode in ROUNDING_MODES:
        for signed in (0, 1):
            for narrow in (0, 1):
                spec = parse_name(function_name("Quant", bool(signed), bool(narrow), mode, 4.0))
                assert spec == {"op": "Quant", "signed": signed, "narrow": narrow, "rounding_mode": mode,
                                "bipolar": False}
    assert parse_name(function_name("Quant", True, False, "FLOOR", 1.0))["bipolar"] is True
    assert parse_name(function_name("Quant", False, False, "FLOOR", 1.0))["bipolar"] is False  # {0, 1}
    assert parse_name(function_name("BipolarQuant")) == {"op": "BipolarQuant"}
    with pytest.raises(ValueError):
        parse_name("Quant_SIDEWAYS_s")


def test_the_fpga_target_gets_the_qonnx_nodes_back(tmp_path) -> None:
    path = tmp_path / "q.onnx"
    onnx.save(one_quantizer("Quant", bits=12.0, rounding_mode="FLOOR", signed=0, narrow=1), path)
    proto = ir.to_proto(load(path).model)
    assert functions_to_qonnx(proto, QONNX_DOMAIN) == 1
    (node,) = proto.graph.node
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert (node.domain, node.op_type) == (QONNX_DOMAIN, "Quant") and len(node.input) == 4
    assert attrs == {"signed": 0, "narrow": 1, "rounding_mode": b"FLOOR"}
    assert not proto.functions and FUNCTION_DOMAIN not in {o.domain for o in proto.opset_import}
    x = inputs()
    np.testing.assert_array_equal(executor(proto, x), executor(one_quantizer("Quant", bits=12.0,
                                  rounding_mode="FLOOR", signed=0, narrow=1), x))
    bipolar = helper.make_node("Quant_BIPOLAR", ["x", "s", "z", "b"], ["y"], domain=FUNCTION_DOMAIN)
    as_qonnx_node(bipolar, QONNX_DOMAIN)
    assert bipolar.op_type == "BipolarQuant" and list(bipolar.input) == ["x", "s"]


def test_cpu_compile_of_a_wide_floor_quantizer_equals_the_executor(tmp_path) -> None:
    model = one_quantizer("Quant", bits=12.0, scale=2**-6, rounding_mode="FLOOR")
    path = tmp_path / "q.onnx"
    onnx.save(model, path)
    art = accelc.compile(path, target="cpu", out=tmp_path / "cpu", input_range=(-40, 40))
    x = inputs()
    np.testing.assert_array_equal(np.concatenate([np.asarray(art.predict(r[None])).reshape(1, N) for r in x]),
                                  executor(model, x))


def test_a_transposed_bipolar_weight_is_folded_into_the_constant(tmp_path) -> None:
    """TorchScript's bias-free Linear: BipolarQuant(W) -> Transpose -> MatMul. The canonical pass
    transpose-quantized-weight moves the Transpose into W under the function call (exact: elementwise, scalar
    scale), so the fpga target sees a quantized constant weight."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal((4, N)).astype(np.float32), "W"), _t("s", 0.1)]
    nodes = [helper.make_node("BipolarQuant", ["W", "s"], ["wq"], name="wq", domain=FINN),
             helper.make_node("Transpose", ["wq"], ["wt"], name="t", perm=[1, 0]),
             helper.make_node("MatMul", ["x", "wt"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "bnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, N])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    path = tmp_path / "bnn.onnx"
    onnx.save(model, path)
    art = accelc.compile(path, target="cpu", out=tmp_path / "cpu")
    ops = [n.op_type for n in onnx.load(str(art.path / "model.onnx")).graph.node]
    assert "Transpose" not in ops and "Bipolar" in ops
    x = inputs()[2:4]
    want = np.concatenate([executor(model, r[None]) for r in x])
    got = np.concatenate([np.asarray(art.predict(r[None])).reshape(1, 4) for r in x])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
