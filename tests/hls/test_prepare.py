"""accelc.hls.prepare: canonical NCHW ONNX -> hls4ml-ready channels-last ONNX, with a node-name map.

The prepared conv net holds qonnx's channels-last custom ops, which ONNX Runtime cannot run, so its
numbers are checked with qonnx's executor; a prepared dense model runs on ONNX Runtime directly.
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

from accelc.hls.prepare import Prepared, prepare
from accelc.transforms.canonical import Canonicalize

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED = {"input", "output", "inputs", "outputs"}


def _const(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _canonical(nodes, in_shape, out_shape, inits, in_name="input", out_name="output") -> onnx.ModelProto:
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
    return _canonical(nodes, ["N", 1, 8, 8], ["N", 3], inits)


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
    return _canonical(nodes, ["N", 6], ["N", 3], inits, "x", "y")


@pytest.fixture(scope="module")
def conv() -> tuple[onnx.ModelProto, Prepared]:
    canonical = _conv_net()
    return canonical, prepare(canonical)


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


def test_spatial_nodes_carry_explicit_attributes(conv) -> None:
    _, prepared = conv
    spatial = [n for n in prepared.model.graph.node if n.op_type in ("Conv", "MaxPool")]
    assert sorted(n.op_type for n in spatial) == ["Conv", "Conv", "MaxPool"]
    for node in spatial:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert {"pads", "strides", "dilations", "kernel_shape"} <= set(attrs), node.name
        if node.op_type == "Conv":
            assert attrs["group"] == 1
    conv2 = next(n for n in spatial if n.name == "conv2")
    attrs = {a.name: helper.get_attribute_value(a) for a in conv2.attribute}
    assert attrs == {
        "kernel_shape": [3, 3],
        "strides": [1, 1],
        "pads": [0, 0, 0, 0],
        "dilations": [1, 1],
        "group": 1,
    }


def test_gemm_becomes_matmul_plus_add_named_after_it(conv) -> None:
    _, prepared = conv
    ops = {n.name: n.op_type for n in prepared.model.graph.node}
    assert "Gemm" not in ops.values()
    assert ops["fc_1"] == "MatMul" and ops["fc_1_bias"] == "Add"
    assert ops["fc_2"] == "MatMul" and ops["fc_2_bias"] == "Add"
    adds = {n.name: n for n in prepared.model.graph.node if n.op_type == "Add"}
    matmuls = {n.name: n for n in prepared.model.graph.node if n.op_type == "MatMul"}
    assert adds["fc_1_bias"].input[0] == matmuls["fc_1"].output[0]


def test_node_names_point_back_to_canonical_nodes(conv) -> None:
    canonical, prepared = conv
    canonical_ops = {n.name: n.op_type for n in canonical.graph.node}
    prepared_ops = {n.name: n.op_type for n in prepared.model.graph.node}
    assert set(prepared.node_names.values()) <= set(canonical_ops)
    for safe, origin in prepared.node_names.items():
        if safe not in prepared_ops:
            continue
        want = canonical_ops[origin]
        got = prepared_ops[safe]
        assert got == want or (want == "Gemm" and got in ("MatMul", "Add")), (safe, origin, got)
    expected = {
        "features_0_conv": "features.0/conv",
        "relu": "relu",
        "pool": "pool",
        "conv2": "conv2",
        "fc_1": "fc.1",
        "fc_1_bias": "fc.1",
        "fc_2": "fc.2",
        "fc_2_bias": "fc.2",
        "n0softmax": "0softmax",
    }
    assert expected.items() <= prepared.node_names.items()
    # every computing node of the prepared model maps back (only inserted layout nodes may not)
    unmapped = [n for n in prepared.model.graph.node if n.name not in prepared.node_names]
    assert all(n.op_type in ("Transpose", "Flatten", "Reshape") for n in unmapped), unmapped


def test_prepared_conv_net_is_channels_last_batch_one_and_computes_the_same(conv) -> None:
    canonical, prepared = conv
    domains = {n.domain for n in prepared.model.graph.node if n.op_type in ("Conv", "MaxPool")}
    assert domains == {"qonnx.custom_op.channels_last"}
    (inp,) = prepared.model.graph.input
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [
        1,
        1,
        8,
        8,
    ]  # NCHW at the boundary, batch 1
    sess = ort.InferenceSession(canonical.SerializeToString(), providers=["CPUExecutionProvider"])
    wrapper = ModelWrapper(prepared.model)
    out_name = prepared.model.graph.output[0].name
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.standard_normal((1, 1, 8, 8)).astype(np.float32)
        got = execute_onnx(wrapper, {inp.name: x})[out_name]
        want = sess.run(None, {"input": x})[0]
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=0, atol=1e-5)


def test_prepare_is_deterministic(conv) -> None:
    canonical, prepared = conv
    again = prepare(onnx.ModelProto.FromString(canonical.SerializeToString()))
    assert again.model.SerializeToString() == prepared.model.SerializeToString()
    assert again.node_names == prepared.node_names


def test_prepare_leaves_its_input_alone(conv) -> None:
    canonical, _ = conv
    fresh = _conv_net()
    assert canonical.SerializeToString() == fresh.SerializeToString()


def test_prepared_dense_model_runs_on_onnxruntime_with_the_same_numbers() -> None:
    canonical = _dense_net()
    prepared = prepare(canonical)
    ops = [(n.name, n.op_type) for n in prepared.model.graph.node]
    assert ops == [("fc_1", "MatMul"), ("fc_1_bias", "Add"), ("relu", "Relu"), ("fc_2", "MatMul")]
    assert prepared.node_names["fc_2"] == "fc/2" and prepared.node_names["fc_1_bias"] == "fc/1"
    ref = ort.InferenceSession(canonical.SerializeToString(), providers=["CPUExecutionProvider"])
    sess = ort.InferenceSession(prepared.model.SerializeToString(), providers=["CPUExecutionProvider"])
    in_name = prepared.model.graph.input[0].name
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    for i in range(len(x)):  # the prepared model has batch 1
        got = sess.run(None, {in_name: x[i : i + 1]})[0]
        np.testing.assert_allclose(got, ref.run(None, {"x": x[i : i + 1]})[0], rtol=0, atol=1e-5)
