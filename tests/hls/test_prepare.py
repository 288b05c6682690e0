"""accelc.hls.prepare: legalized NCHW ONNX -> hls4ml-ready channels-last ONNX, with a node-name map.

prepare's input is the graph after legalize-fpga (what accelc.hls.lower gets), so the models here are
canonicalized and legalized first. The prepared conv net holds qonnx's channels-last custom ops, which ONNX
Runtime cannot run, so its numbers are checked with qonnx's executor; a prepared dense model runs on ONNX
Runtime directly.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from accelc.hls.legalize import LegalizeFpga
from accelc.hls.prepare import Prepared, prepare
from accelc.transforms.canonical import Canonicalize

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED = {"input", "output", "inputs", "outputs"}


def _const(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _legalized(nodes, in_shape, out_shape, inits, in_name="input", out_name="output") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
        inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    onnx.checker.check_model(proto, full_check=True)
    model = ir.from_proto(proto)
    Canonicalize()(model)
    LegalizeFpga()(model)
    return ir.to_proto(model)


def _conv_net() -> onnx.ModelProto:
    """Awkward names on purpose: 'input'/'output', dots and slashes, a leading digit, an unnamed node."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="features.0/conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Flatten", ["c2"], ["f"], name="output"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["g"], name="fc.1", transB=1),
        helper.make_node("Relu", ["g"], ["r2"]),
        helper.make_node("Gemm", ["r2", "w4", "b4"], ["z"], name="fc.2", transB=1),
        helper.make_node("Softmax", ["z"], ["output"], name="0softmax", axis=-1),
    ]
    inits = [
        _const("w1", rng.standard_normal((4, 1, 3, 3))),
        _const("b1", rng.standard_normal(4)),
        _const("w2", rng.standard_normal((3, 4, 3, 3))),
        _const("w3", 0.3 * rng.standard_normal((10, 12))),
        _const("b3", rng.standard_normal(10)),
        _const("w4", 0.3 * rng.standard_normal((3, 10))),
        _const("b4", rng.standard_normal(3)),
    ]
    return _legalized(nodes, ["N", 1, 8, 8], ["N", 3], inits)


def _dense_net() -> onnx.ModelProto:
    """Gemm with alpha/beta/transB, then a Gemm without bias and transB=0."""
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc/1", transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2"], ["y"], name="fc/2"),
    ]
    inits = [
        _const("w1", rng.standard_normal((8, 6))),
        _const("b1", rng.standard_normal(8)),
        _const("w2", rng.standard_normal((8, 3))),
    ]
    return _legalized(nodes, ["N", 6], ["N", 3], inits, "x", "y")


@pytest.fixture(scope="module")
def conv() -> tuple[onnx.ModelProto, Prepared]:
    legalized = _conv_net()
    return legalized, prepare(legalized)


def _all_names(model: onnx.ModelProto) -> set[str]:
    g = model.graph
    names = {n.name for n in g.node}
    names |= {t for n in g.node for t in [*n.input, *n.output] if t}
    names |= {v.name for v in [*g.input, *g.output, *g.value_info]}
    names |= {i.name for i in g.initializer}
    return names


def test_prepared_names_are_c_identifiers(conv) -> None:
    _, prepared = conv
    names = _all_names(prepared.model)
    bad = sorted(n for n in names if not IDENT.fullmatch(n) or n in RESERVED)
    assert bad == []
    node_names = [n.name for n in prepared.model.graph.node]
    assert len(set(node_names)) == len(node_names)


def test_legalized_dense_layers_keep_their_names(conv) -> None:
    """gemm-to-matmul made each Gemm a MatMul '<gemm>_matmul' + Add '<gemm>'; prepare keeps both, sanitized."""
    _, prepared = conv
    ops = {n.name: n.op_type for n in prepared.model.graph.node}
    assert "Gemm" not in ops.values()
    assert ops["fc_1_matmul"] == "MatMul" and ops["fc_1"] == "Add"
    assert ops["fc_2_matmul"] == "MatMul" and ops["fc_2"] == "Add"
    adds = {n.name: n for n in prepared.model.graph.node if n.op_type == "Add"}
    matmuls = {n.name: n for n in prepared.model.graph.node if n.op_type == "MatMul"}
    assert adds["fc_1"].input[0] == matmuls["fc_1_matmul"].output[0]


def test_node_names_point_back_to_legalized_nodes(conv) -> None:
    legalized, prepared = conv
    legalized_ops = {n.name: n.op_type for n in legalized.graph.node}
    prepared_ops = {n.name: n.op_type for n in prepared.model.graph.node}
    assert set(prepared.node_names.values()) <= set(legalized_ops)
    for safe, origin in prepared.node_names.items():
        if safe in prepared_ops:
            assert prepared_ops[safe] == legalized_ops[origin], (safe, origin)
    expected = {
        "features_0_conv": "features.0/conv",
        "relu": "relu",
        "pool": "pool",
        "conv2": "conv2",
        "fc_1_matmul": "fc.1_matmul",
        "fc_1": "fc.1",
        "fc_2_matmul": "fc.2_matmul",
        "fc_2": "fc.2",
        "n0softmax": "0softmax",
    }
    assert expected.items() <= prepared.node_names.items()
    # every computing node of the prepared model maps back (only inserted layout nodes may not)
    unmapped = [n for n in prepared.model.graph.node if n.name not in prepared.node_names]
    assert all(n.op_type in ("Transpose", "Flatten", "Reshape") for n in unmapped), unmapped


def test_prepared_conv_net_is_channels_last_batch_one_and_computes_the_same(conv) -> None:
    legalized, prepared = conv
    domains = {n.domain for n in prepared.model.graph.node if n.op_type in ("Conv", "MaxPool")}
    assert domains == {"qonnx.custom_op.channels_last"}
    (inp,) = prepared.model.graph.input
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [
        1,
        1,
        8,
        8,
    ]  # NCHW at the boundary, batch 1
    sess = ort.InferenceSession(legalized.SerializeToString(), providers=["CPUExecutionProvider"])
    wrapper = ModelWrapper(prepared.model)
    out_name = prepared.model.graph.output[0].name
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.standard_normal((1, 1, 8, 8)).astype(np.float32)
        got = execute_onnx(wrapper, {inp.name: x})[out_name]
        want = sess.run(None, {"input": x})[0]
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=0, atol=1e-5)


def test_prepare_is_deterministic(conv) -> None:
    legalized, prepared = conv
    again = prepare(onnx.ModelProto.FromString(legalized.SerializeToString()))
    assert again.model.SerializeToString() == prepared.model.SerializeToString()
    assert again.node_names == prepared.node_names


def test_prepare_leaves_its_input_alone(conv) -> None:
    legalized, _ = conv
    fresh = _conv_net()
    assert legalized.SerializeToString() == fresh.SerializeToString()


def test_prepared_dense_model_runs_on_onnxruntime_with_the_same_numbers() -> None:
    legalized = _dense_net()
    prepared = prepare(legalized)
    ops = [(n.name, n.op_type) for n in prepared.model.graph.node]
    assert ops == [("fc_1_matmul", "MatMul"), ("fc_1", "Add"), ("relu", "Relu"), ("fc_2", "MatMul")]
    assert prepared.node_names["fc_2"] == "fc/2" and prepared.node_names["fc_1"] == "fc/1"
    ref = ort.InferenceSession(legalized.SerializeToString(), providers=["CPUExecutionProvider"])
    sess = ort.InferenceSession(prepared.model.SerializeToString(), providers=["CPUExecutionProvider"])
    in_name = prepared.model.graph.input[0].name
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    for i in range(len(x)):  # the prepared model has batch 1
        got = sess.run(None, {in_name: x[i : i + 1]})[0]
        np.testing.assert_allclose(got, ref.run(None, {"x": x[i : i + 1]})[0], rtol=0, atol=1e-5)


def _quantized_gemm_net() -> onnx.ModelProto:
    """Gemm(transB=1) on an int8 weight and an int32 bias (DequantizeLinear), then a float MatMul + Add named
    like a bias ('head', 'head_bias')."""
    rng = np.random.default_rng(4)
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["w"], name="w_dq"),
        helper.make_node("DequantizeLinear", ["bq", "sb", "zb"], ["b"], name="b_dq"),
        helper.make_node("Gemm", ["x", "w", "b"], ["g"], name="fc", transB=1),
        helper.make_node("MatMul", ["g", "w2"], ["m"], name="head"),
        helper.make_node("Add", ["m", "b2"], ["y"], name="head_bias"),
    ]
    inits = [
        numpy_helper.from_array(rng.integers(-64, 64, (5, 6)).astype(np.int8), "wq"),
        _const("sw", 0.03), numpy_helper.from_array(np.array(0, np.int8), "zw"),
        numpy_helper.from_array(rng.integers(-500, 500, 5).astype(np.int32), "bq"),
        _const("sb", 0.001), numpy_helper.from_array(np.array(0, np.int32), "zb"),
        _const("w2", rng.standard_normal((5, 3))), _const("b2", rng.standard_normal(3)),
    ]
    return _legalized(nodes, ["N", 6], ["N", 3], inits, "x", "y")


def test_a_quantized_weight_gemm_is_rewritten_here_after_the_quant_conversion() -> None:
    """legalize-fpga leaves a Gemm on a DequantizeLinear weight alone; prepare makes it MatMul (named as the Gemm:
    its weight transposed under the Quant node) + Add '<gemm>_bias', which stands for the Gemm per layer."""
    legalized = _quantized_gemm_net()
    assert [n.op_type for n in legalized.graph.node].count("Gemm") == 1
    prepared = prepare(legalized)
    ops = {n.name: n.op_type for n in prepared.model.graph.node}
    assert "Gemm" not in ops.values() and ops["fc"] == "MatMul" and ops["fc_bias"] == "Add"
    assert "fc" not in prepared.node_names  # a scaled product: its hls4ml output is in integer units
    assert prepared.node_names["fc_bias"] == "fc"
    assert prepared.node_names["head_bias"] == "head_bias"  # only the Adds prepare made stand for another node
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.disable_quant_qdq", "1")  # QDQ as written: exact
    ref = ort.InferenceSession(legalized.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    wrapper = ModelWrapper(prepared.model)
    in_name, out_name = prepared.model.graph.input[0].name, prepared.model.graph.output[0].name
    x = np.random.default_rng(5).standard_normal((3, 6)).astype(np.float32)
    for i in range(len(x)):
        got = execute_onnx(wrapper, {in_name: x[i : i + 1]})[out_name]
        np.testing.assert_allclose(got, ref.run(None, {"x": x[i : i + 1]})[0], rtol=0, atol=1e-5)
