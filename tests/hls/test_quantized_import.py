"""Already-quantized models on the fpga target: ONNX Runtime QDQ models and QONNX Quant models lower to hls4ml with
the models' own integer types, and the emulation computes the same integer arithmetic.

The references run the QDQ semantics exactly: ONNX Runtime with its QDQ kernel fusion off (see _exact), and
qonnx's executor for Quant nodes. ONNX Runtime's fused int8 kernels are not exact on CPUs without VNNI: u8s8
products saturate in int16 (VPMADDUBSW), measured 0.27 (u8 activations) to 0.38 (symmetric s8) off on the
MLP below without reduce_range. The QDQ models here are quantized with reduce_range=True, where the fused
kernels are exact, so accelc's self-check (which runs the optimized session) agrees as well.

Three hls4ml builds (slow): the QDQ MLP and QDQ conv net through accelc.compile, and the QONNX MLP lowered
directly (ONNX Runtime, which accelc's float reference needs, cannot run Quant nodes).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes as QonnxInferShapes
from torch import nn

import accelc
from accelc.errors import AccelcError, UnsupportedOpError
from accelc.frontend.qonnx import QONNX_DOMAIN, qonnx_to_qcdq
from accelc.hls.emulate import emulator_meta, load_emulator, save_meta
from accelc.hls.prepare import prepare
from accelc.hls.project import FpgaOptions, build_config, write_project
from accelc.hls.quantized_import import (
    alpha_precision,
    is_power_of_two,
    quant_parameters,
    quantized_layer_precisions,
)
from accelc.hls.support import fpga_supports
from accelc.transforms.canonical import Canonicalize

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

IN_MLP = (1, 16)
IN_CONV = (1, 3, 10, 10)
N = 64
EXACT_ATOL = 1e-5  # float32 rounding of the final rescale; the integer results are identical


# --- models -------------------------------------------------------------------------------------------------


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10)).eval()


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3)
        self.fc = nn.Linear(8 * 3 * 3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
        return self.fc(torch.relu(self.c2(x)).flatten(1))


def seeded(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class _Calibration(CalibrationDataReader):
    def __init__(self, shape: tuple[int, ...], n: int = 32) -> None:
        self._it = iter([{"x": seeded(shape, 100 + i)} for i in range(n)])

    def get_next(self) -> dict | None:
        return next(self._it, None)


def ort_qdq(net: nn.Module, shape: tuple[int, ...], directory: Path, per_channel: bool = False) -> Path:
    """The torch model exported, pre-processed and statically quantized by ONNX Runtime (QDQ, uint8 activations
    with zero points, int8 weights, int32 biases)."""
    float_path, pre, out = directory / "float.onnx", directory / "pre.onnx", directory / "qdq.onnx"
    torch.onnx.export(net, torch.zeros(shape), str(float_path), opset_version=13, dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    quant_pre_process(str(float_path), str(pre))
    quantize_static(str(pre), str(out), _Calibration(shape), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def _exact(path: Path, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime with QDQ fusion off: each QuantizeLinear/DequantizeLinear runs as written (exact semantics)."""
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.disable_quant_qdq", "1")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _optimized(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def canonical(path_or_proto) -> ir.Model:
    model = ir.load(str(path_or_proto)) if isinstance(path_or_proto, Path) else ir.from_proto(path_or_proto)
    Canonicalize()(model)
    return model


def qonnx_mlp() -> onnx.ModelProto:
    """What Brevitas exports for a quantization-aware MLP: input Quant(8 bit, 2^-4) -> MatMul with a 4-bit narrow
    weight (2^-3) -> bias -> ReLU -> unsigned Quant(8 bit, 2^-3) -> MatMul with a 6-bit weight (2^-4) -> bias."""
    rng = np.random.default_rng(0)

    def const(name: str, value) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)

    def quant(x: str, scale: str, bits: str, y: str, name: str, signed: int = 1, narrow: int = 0) -> onnx.NodeProto:
        return helper.make_node("Quant", [x, scale, "zero", bits], [y], name=name, domain=QONNX_DOMAIN,
                                signed=signed, narrow=narrow, rounding_mode="ROUND")

    inits = [const("W1", rng.standard_normal((16, 32)) * 0.3), const("b1", rng.standard_normal(32) * 0.1),
             const("W2", rng.standard_normal((32, 10)) * 0.2), const("b2", rng.standard_normal(10) * 0.1),
             const("s_in", 2**-4), const("s_w1", 2**-3), const("s_h", 2**-3), const("s_w2", 2**-4),
             const("zero", 0.0), const("bits8", 8), const("bits4", 4), const("bits6", 6)]
    nodes = [
        quant("x", "s_in", "bits8", "xq", "quant_in"),
        quant("W1", "s_w1", "bits4", "W1q", "quant_w1", narrow=1),
        helper.make_node("MatMul", ["xq", "W1q"], ["m1"], name="fc1"),
        helper.make_node("Add", ["m1", "b1"], ["a1"], name="fc1_bias"),
        helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
        quant("r1", "s_h", "bits8", "hq", "quant_h", signed=0),
        quant("W2", "s_w2", "bits6", "W2q", "quant_w2"),
        helper.make_node("MatMul", ["hq", "W2q"], ["m2"], name="fc2"),
        helper.make_node("Add", ["m2", "b2"], ["y"], name="fc2_bias"),
    ]
    graph = helper.make_graph(nodes, "qonnx_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])
    model.ir_version = 8
    return model


def qonnx_run(model: onnx.ModelProto, x: np.ndarray, full: bool = False) -> list[dict]:
    wrapper = ModelWrapper(model).transform(QonnxInferShapes())
    name = model.graph.input[0].name
    return [execute_onnx(wrapper, {name: x[i : i + 1]}, return_full_exec_context=full) for i in range(len(x))]


@pytest.fixture(scope="module")
def qdq_mlp(tmp_path_factory) -> Path:
    return ort_qdq(mlp(), IN_MLP, tmp_path_factory.mktemp("qdq_mlp"))


# --- canonicalization, preparation, support (no hls4ml build) -----------------------------------------------


def test_canonicalization_keeps_the_qdq_weights(qdq_mlp: Path) -> None:
    """fold-constants (onnxscript) must not fold DequantizeLinear(int8 weight) into a float weight: it keeps
    Quantize/DequantizeLinear by design (its DEFAULT_CONSTANT_FOLD_BLACKLIST)."""
    model = canonical(qdq_mlp)
    dqs = [n for n in model.graph if n.op_type == "DequantizeLinear" and n.inputs[0].const_value is not None]
    assert len(dqs) == 4  # two weights, two biases
    assert {n.inputs[0].const_value.dtype for n in dqs} == {ir.DataType.INT8, ir.DataType.INT32}
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph) == 3  # input, hidden, output activations
    assert fpga_supports(model) == []


def test_prepare_turns_qdq_into_quant_nodes_that_compute_the_same(qdq_mlp: Path) -> None:
    model = canonical(qdq_mlp)
    proto = ir.to_proto(model)
    prepared = prepare(proto)
    ops = [n.op_type for n in prepared.model.graph.node]
    assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops
    quants = {n.name: n for n in prepared.model.graph.node if n.op_type == "Quant"}
    # weights and activations stay quantized; int32 biases are folded into float constants (exact values)
    assert len(quants) == 5
    for name in quants:  # each Quant carries its DequantizeLinear's name and traces back to it
        assert prepared.node_names[name].endswith("DequantizeLinear"), name
    params = quant_parameters(prepared.model.graph)
    assert {p["bitwidth"] for p in params.values()} == {8.0}
    assert {(p["signed"], p["constant"]) for p in params.values()} == {(True, True), (False, False)}
    x = seeded((8, *IN_MLP[1:]), 1)
    got = np.concatenate([r[prepared.model.graph.output[0].name] for r in qonnx_run(prepared.model, x)])
    np.testing.assert_allclose(got, _exact(qdq_mlp, x), rtol=0, atol=EXACT_ATOL)


def test_build_config_keeps_the_types_the_quant_nodes_fix(qdq_mlp: Path) -> None:
    """accelc's range-derived 18-bit types must not replace what hls4ml derives from the Quant nodes."""
    prepared = prepare(ir.to_proto(canonical(qdq_mlp)))
    ranges = {origin: 1.0 for origin in prepared.node_names.values()}
    cfg, io_type = build_config(prepared, ranges, {"x": 4.0}, FpgaOptions())
    assert io_type == "io_parallel"
    layers = cfg["LayerName"]
    expected = quantized_layer_precisions(prepared.model)
    for name, entry in expected.items():
        for key, value in entry.items():
            assert layers[name]["Precision"][key] == value, (name, key)
    for node in prepared.model.graph.node:
        prec = layers[node.name]["Precision"]
        if node.op_type == "Quant":  # the integer type is hls4ml's own, from the bit width
            assert prec["result"] == "auto", node.name
        if node.op_type == "MatMul":  # integer products: hls4ml infers exact accumulators
            assert prec["result"] == "auto" and prec["accum"] == "auto", node.name
    # non-power-of-2 scales: 24 significant bits of the smallest product of two scales
    params = quant_parameters(prepared.model.graph)
    assert not any(is_power_of_two(p["scale"]) for p in params.values())
    width, integer = map(int, re.match(r"fixed<(\d+),(\d+)", alpha_precision(params)).groups())
    smallest = min(float(p["scale"]) for p in params.values()) ** 2
    assert 2.0 ** -(width - integer) <= smallest * 2.0**-23
    # the input the first Quant rounds: 24 bits below its scale, not accelc's 18-bit range type
    assert int(re.match(r"fixed<(\d+)", layers["x"]["Precision"]["result"]).group(1)) > 30


def test_qonnx_model_round_trips_through_qcdq_with_its_bit_widths() -> None:
    """A QONNX model becomes a QDQ graph ONNX Runtime runs exactly like qonnx, and prepare recovers its Quant nodes
    with the same bit widths (4-bit narrow and 6-bit weights via the Clip bounds)."""
    model = qonnx_mlp()
    qcdq = qonnx_to_qcdq(model)
    assert not [n for n in qcdq.graph.node if n.op_type == "Quant"]
    x = seeded((8, *IN_MLP[1:]), 2)
    want = np.concatenate([r["y"] for r in qonnx_run(model, x)])
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.disable_quant_qdq", "1")
    sess = ort.InferenceSession(qcdq.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    got = np.concatenate([sess.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    np.testing.assert_array_equal(got, want)
    canon = canonical(qcdq)
    assert fpga_supports(canon) == []
    prepared = prepare(ir.to_proto(canon))
    bits = sorted((p["bitwidth"], p["signed"]) for p in quant_parameters(prepared.model.graph).values())
    assert bits == [(4.0, True), (6.0, True), (8.0, False), (8.0, True)]
    narrow = [a.i for n in prepared.model.graph.node if n.op_type == "Quant" for a in n.attribute
              if a.name == "narrow"]
    assert sorted(narrow) == [0, 0, 0, 1]


def test_qonnx_quant_that_qdq_cannot_express_is_refused_by_name() -> None:
    model = qonnx_mlp()
    bits = next(i for i in model.graph.initializer if i.name == "bits6")
    bits.CopyFrom(numpy_helper.from_array(np.asarray(12, dtype=np.float32), "bits6"))
    with pytest.raises(AccelcError, match="Quant node 'quant_w2' has no QuantizeLinear/DequantizeLinear"):
        qonnx_to_qcdq(model)


def _support_of(nodes, inits, in_shape=(1, 4), out_shape=(1, 4)) -> list:
    graph = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])
    proto.ir_version = 8
    return fpga_supports(canonical(proto))


def _t(name: str, value, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _qdq_pair(x: str, y: str, scale: str, zero: str, name: str) -> list[onnx.NodeProto]:
    return [helper.make_node("QuantizeLinear", [x, scale, zero], [f"{name}_q"], name=f"{name}_quantize"),
            helper.make_node("DequantizeLinear", [f"{name}_q", scale, zero], [y], name=f"{name}_dequantize")]


W4 = np.arange(16, dtype=np.int8).reshape(4, 4) - 8

REFUSALS = {
    "per-channel activations": (
        [*_qdq_pair("x", "xd", "s4", "z4", "act"), helper.make_node("Relu", ["xd"], ["y"], name="relu")],
        [_t("s4", [0.1, 0.2, 0.1, 0.2]), _t("z4", [0, 0, 0, 0], np.uint8)],
        ("QuantizeLinear", "act_quantize", "per-channel activation quantization"),
    ),
    "per-channel weights": (
        [helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], name="w_dequantize", axis=1),
         helper.make_node("MatMul", ["x", "wd"], ["y"], name="mm")],
        [_t("w", W4, np.int8), _t("sw", [0.1, 0.2, 0.3, 0.4]), _t("zw", [0, 0, 0, 0], np.int8)],
        ("DequantizeLinear", "w_dequantize", "a weight quantized with per-channel scales (4), read by MatMul 'mm'"),
    ),
    "asymmetric weights": (
        [helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], name="w_dequantize"),
         helper.make_node("MatMul", ["x", "wd"], ["y"], name="mm")],
        [_t("w", W4 + 100, np.uint8), _t("sw", 0.1), _t("zw", 100, np.uint8)],
        ("DequantizeLinear", "w_dequantize", "a weight quantized with a nonzero zero point"),
    ),
    "integer arithmetic": (
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="act_quantize"),
         helper.make_node("Cast", ["xq"], ["y"], name="to_float", to=TensorProto.FLOAT)],
        [_t("s", 0.1), _t("z", 0, np.int8)],
        ("QuantizeLinear", "act_quantize", "its integer output is read by Cast 'to_float'"),
    ),
    "rounding the hls4ml Quant lacks": (
        [helper.make_node("Quant", ["x", "s", "zero", "bits"], ["y"], name="q_ceil", domain=QONNX_DOMAIN,
                          signed=1, narrow=0, rounding_mode="CEIL")],
        [_t("s", 0.125), _t("zero", 0.0), _t("bits", 8)],
        ("Quant", "q_ceil", "rounding_mode=CEIL (hls4ml lowers ROUND and FLOOR)"),
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_quantization_hls4ml_cannot_lower_exactly_is_refused(case: str) -> None:
    nodes, inits, (op, node, reason) = REFUSALS[case]
    found = [u for u in _support_of(nodes, inits) if u.node == node and reason in u.reason]
    assert len(found) == 1, _support_of(nodes, inits)
    assert (found[0].op, found[0].target) == (op, "fpga")
    text = str(found[0])
    assert op in text and f"'{node}'" in text and reason in text


def test_qonnx_quant_nodes_in_the_graph_itself_are_refused_with_the_conversion_to_use() -> None:
    """The fpga support check on a raw QONNX graph names the conversion; accelc.load applies it to .onnx files."""
    found = [u for u in fpga_supports(canonical(qonnx_mlp())) if u.op == "Quant"]
    assert sorted(u.node for u in found) == ["quant_h", "quant_in", "quant_w1", "quant_w2"]
    assert all("cannot run QONNX Quant nodes" in u.reason and "qonnx_to_qcdq" in u.hint for u in found)


@pytest.mark.slow
def test_qonnx_file_compiles_end_to_end_for_fpga_and_cpu(tmp_path) -> None:
    """A QONNX .onnx file (Brevitas-style Quant nodes) through accelc.compile: the frontend converts it to QDQ,
    the fpga target lowers it back to the same bit widths; both targets match qonnx's own execution."""
    import accelc

    path = tmp_path / "qonnx_mlp.onnx"
    onnx.save(qonnx_mlp(), path)
    x = seeded((N, *IN_MLP[1:]), 9)
    want = np.concatenate([r["y"] for r in qonnx_run(qonnx_mlp(), x)])
    for target in ("cpu", "fpga"):
        art = accelc.compile(path, target=target, out=tmp_path / target)
        assert art.manifest["source"]["kind"] == "qonnx"
        got = np.asarray(art.predict(x)).reshape(want.shape)
        assert float(np.max(np.abs(got - want))) <= EXACT_ATOL, target
    assert "ap_fixed<4,1," in _types(tmp_path / "fpga")


def test_grouped_conv_with_quantized_weights_is_refused() -> None:
    """accelc.hls.legalize.expand_grouped_conv expands grouped Convs with a float constant weight only."""
    nodes = [helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], name="w_dequantize"),
             helper.make_node("Conv", ["x", "wd"], ["y"], name="grouped", group=2, kernel_shape=[1, 1])]
    inits = [_t("w", np.ones((4, 2, 1, 1)), np.int8), _t("sw", 0.1), _t("zw", 0, np.int8)]
    (u,) = _support_of(nodes, inits, (1, 4, 4, 4), (1, 4, 4, 4))
    assert (u.op, u.node) == ("Conv", "grouped") and "grouped Conv with quantized weights" in u.reason


def test_compile_refuses_ort_per_channel_weights_naming_each_node(tmp_path) -> None:
    path = ort_qdq(mlp(), IN_MLP, tmp_path, per_channel=True)
    with pytest.raises(UnsupportedOpError) as err:
        accelc.compile(path, target="fpga", out=tmp_path / "fpga")
    nodes = sorted(u.node for u in err.value.unsupported)
    assert nodes == ["0.weight_DequantizeLinear", "2.weight_DequantizeLinear"]
    for u in err.value.unsupported:
        assert u.op == "DequantizeLinear" and "per-channel scales" in u.reason and "per_channel=False" in u.hint


# --- hls4ml C simulation ------------------------------------------------------------------------------------


def _types(out: Path) -> str:
    return (out / "hls" / "firmware" / "defines.h").read_text()


def _weights(out: Path) -> list[np.ndarray]:
    files = sorted((out / "hls" / "firmware" / "weights").glob("w*.txt"))
    return [np.array([float(v) for v in f.read_text().split(",")]) for f in files]


@pytest.mark.slow
def test_ort_qdq_mlp_on_fpga_is_the_same_integer_arithmetic(qdq_mlp: Path, tmp_path) -> None:
    out = tmp_path / "fpga"
    art = accelc.compile(qdq_mlp, target="fpga", out=out)
    assert art.manifest["self_check"]["passed"] is True
    x = seeded((N, *IN_MLP[1:]), 5)
    y = art.predict(x)
    exact = _exact(qdq_mlp, x)
    err = float(np.max(np.abs(y - exact)))
    assert err <= EXACT_ATOL, err  # measured 6e-8
    np.testing.assert_allclose(_optimized(qdq_mlp, x), exact, rtol=0, atol=EXACT_ATOL)  # reduce_range: exact too
    types = _types(out)
    # int8 weights and uint8 activations, as the QDQ nodes say; the dense layers multiply integers
    assert types.count("typedef ap_fixed<8,8,AP_RND_CONV,AP_SAT,0> weight") == 2, types
    assert types.count("typedef ap_ufixed<8,8,AP_RND_CONV,AP_SAT,0>") == 3, types
    weights = _weights(out)
    assert len(weights) == 2
    for w in weights:
        np.testing.assert_array_equal(w, np.round(w))
        assert np.abs(w).max() <= 64  # reduce_range: 7-bit weights in int8
    gemm = art.manifest["target"]["precision"]["n0_Gemm"]  # left to hls4ml's exact inference
    assert (gemm["result"], gemm["accum"]) == ("auto", "auto")


@pytest.mark.slow
def test_ort_qdq_conv_net_on_fpga_is_exact_in_io_stream(tmp_path) -> None:
    """uint8 input with a zero point feeds the first conv (its weights are folded to float, hls4ml cannot move the
    rescale), ONNX Runtime's re-quantization after MaxPool/Flatten is dropped, the rest multiplies integers."""
    path = ort_qdq(ConvNet().eval(), IN_CONV, tmp_path)
    out = tmp_path / "fpga"
    art = accelc.compile(path, target="fpga", out=out)
    assert art.manifest["target"]["io_type"] == "io_stream"
    assert art.manifest["self_check"]["passed"] is True
    x = seeded((N, *IN_CONV[1:]), 6)
    err = float(np.max(np.abs(art.predict(x) - _exact(path, x))))
    assert err <= EXACT_ATOL, err  # measured 3e-8
    types = _types(out)
    assert types.count("typedef ap_fixed<8,8,AP_RND_CONV,AP_SAT,0> weight") == 2, types  # c2, fc: int8
    report = accelc.verify(art, x[:4])
    assert report.first_jump is None
    assert all(row.max_abs_err <= EXACT_ATOL for row in report.per_layer), report.per_layer


def _lower_directly(model: onnx.ModelProto, x: np.ndarray, out: Path):
    """accelc.hls.lower.lower_to_hls without ONNX Runtime: ranges from qonnx's executor instead."""
    canon = ir.to_proto(canonical(model))
    contexts = qonnx_run(canon, x, full=True)
    ranges = {n.name: max(float(np.max(np.abs(c[n.output[0]]))) for c in contexts) for n in canon.graph.node}
    prepared = prepare(canon)
    opts = FpgaOptions()
    cfg, io_type = build_config(prepared, ranges, {"x": float(np.max(np.abs(x)))}, opts)
    hls_model = write_project(prepared, cfg, io_type, opts, out)
    save_meta(out, emulator_meta(hls_model, prepared.node_names))
    return hls_model, load_emulator(out)


@pytest.mark.slow
def test_qonnx_mlp_lowers_with_the_quant_bit_widths_and_matches_qonnx(tmp_path) -> None:
    model = qonnx_mlp()
    x = seeded((N, *IN_MLP[1:]), 7)
    hls_model, emulator = _lower_directly(model, x, tmp_path / "hls")
    want = np.concatenate([r["y"] for r in qonnx_run(model, x)])
    got = emulator.run([x])[0].reshape(want.shape)
    err = float(np.max(np.abs(got - want)))
    assert err <= EXACT_ATOL, err  # measured 0
    layers = {layer.name: layer for layer in hls_model.get_layers()}
    weight = {name: layers[f"Dense_{name}"].get_weights("weight").type.precision for name in ("fc1", "fc2")}
    # power-of-2 scales: fixed<bits, bits + log2(scale)>, narrow -> symmetric saturation
    assert (weight["fc1"].width, weight["fc1"].integer, weight["fc1"].signed) == (4, 1, True)
    assert (weight["fc2"].width, weight["fc2"].integer) == (6, 2)
    act_in = layers["quant_in_act"].get_output_variable().type.precision
    hidden = layers["quant_h_act"].get_output_variable().type.precision
    assert (act_in.width, act_in.integer, act_in.signed) == (8, 4, True)
    assert (hidden.width, hidden.integer, hidden.signed) == (8, 5, False)
    types = (tmp_path / "hls" / "firmware" / "defines.h").read_text()
    for t in ("ap_fixed<4,1,AP_RND_CONV,AP_SAT_SYM,0>", "ap_fixed<6,2,AP_RND_CONV,AP_SAT,0>",
              "ap_fixed<8,4,AP_RND_CONV,AP_SAT,0>", "ap_ufixed<8,5,AP_RND_CONV,AP_SAT,0>"):
        assert t in types, t
