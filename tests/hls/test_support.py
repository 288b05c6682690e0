"""accelc.hls.support: what the fpga target refuses before lowering, and why (op, node, attribute)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

import accelc
from accelc.backends import get_target
from accelc.backends.base import Unsupported
from accelc.errors import UnsupportedOpError
from accelc.hls.support import fpga_supports
from accelc.transforms.canonical import InferShapes


def _const(name: str, shape: tuple[int, ...], seed: int = 0) -> onnx.TensorProto:
    return numpy_helper.from_array(
        np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name
    )


def _proto(nodes, in_shape, out_shape, inits=(), extra_opsets=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "s",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        list(inits),
    )
    opsets = [helper.make_opsetid("", 13), *(helper.make_opsetid(d, 1) for d in extra_opsets)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def _model(nodes, in_shape, out_shape, inits=(), extra_opsets=()) -> ir.Model:
    model = ir.from_proto(_proto(nodes, in_shape, out_shape, inits, extra_opsets))
    InferShapes()(model)
    return model


def _conv(**attrs):
    w = _const("w", (4, 4 // attrs.get("group", 1), 3, 3))
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="bad_node", **attrs)
    return [node], [1, 4, 9, 9], None, [w]


CASES = {
    "dilated conv": (*_conv(dilations=[2, 2]), "Conv", "dilations=[2, 2]"),
    "grouped conv not dividing C_out": (*_conv(group=3), "Conv", "group=3"),
    "auto_pad conv": (*_conv(auto_pad="SAME_UPPER"), "Conv", "auto_pad=SAME_UPPER"),
    "ceil_mode pool": (
        [
            helper.make_node(
                "MaxPool", ["x"], ["y"], name="bad_node", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1
            )
        ],
        [1, 2, 5, 5],
        None,
        [],
        "MaxPool",
        "ceil_mode=1",
    ),
    "padded pool": (
        [
            helper.make_node(
                "AveragePool", ["x"], ["y"], name="bad_node", kernel_shape=[3, 3], pads=[1, 1, 1, 1]
            )
        ],
        [1, 2, 5, 5],
        None,
        [],
        "AveragePool",
        "pads=[1, 1, 1, 1]",
    ),
    "softmax axis 0": (
        [helper.make_node("Softmax", ["x"], ["y"], name="bad_node", axis=0)],
        [4, 10],
        None,
        [],
        "Softmax",
        "axis=0",
    ),
    "softmax rank 5": (
        [helper.make_node("Softmax", ["x"], ["y"], name="bad_node", axis=-1)],
        [1, 2, 2, 2, 3],
        None,
        [],
        "Softmax",
        "rank-5",
    ),
    "broadcasting matmul": (
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="bad_node")],
        [1, 4, 8],
        None,
        [_const("w", (8, 3))],
        "MatMul",
        "rank-3",
    ),
    "gemm transA": (
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="bad_node", transA=1)],
        [8, 1],
        None,
        [_const("w", (8, 3))],
        "Gemm",
        "transA=1",
    ),
    "global average pool": (
        [helper.make_node("GlobalAveragePool", ["x"], ["y"], name="bad_node")],
        [1, 2, 4, 4],
        None,
        [],
        "GlobalAveragePool",
        "AveragePool",
    ),
    "transpose": (
        [helper.make_node("Transpose", ["x"], ["y"], name="bad_node", perm=[1, 0])],
        [3, 5],
        None,
        [],
        "Transpose",
        "layout",
    ),
    "unknown op": (
        [helper.make_node("Erf", ["x"], ["y"], name="bad_node")],
        [1, 5],
        None,
        [],
        "Erf",
        "not lowered",
    ),
    "constant divided by a tensor": (
        [helper.make_node("Div", ["k", "x"], ["y"], name="bad_node")],
        [1, 5],
        None,
        [_const("k", (5,))],
        "Div",
        "constant divided by a tensor",
    ),
    "selu with other constants": (
        [helper.make_node("Selu", ["x"], ["y"], name="bad_node", gamma=2.0)],
        [1, 5],
        None,
        [],
        "Selu",
        "gamma=2.0",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_refusal_names_op_node_target_and_attribute(case: str) -> None:
    nodes, in_shape, _, inits, op, attribute = CASES[case]
    model = _model(nodes, in_shape, None, inits)
    found = fpga_supports(model)
    assert len(found) == 1, found
    (u,) = found
    assert isinstance(u, Unsupported)
    assert (u.op, u.node, u.target) == (op, "bad_node", "fpga")
    text = str(u)
    for part in (op, "'bad_node'", "fpga", attribute):
        assert part in text, (part, text)
    assert u.to_dict()["node"] == "bad_node"


def test_custom_domain_node_is_refused() -> None:
    model = _model(
        [helper.make_node("Foo", ["x"], ["y"], name="bad_node", domain="com.example")],
        [1, 3],
        [1, 3],
        extra_opsets=["com.example"],
    )
    (u,) = fpga_supports(model)
    assert (u.op, u.node, u.target) == ("Foo", "bad_node", "fpga")
    assert "custom domain 'com.example'" in str(u)


def _lenet_nodes():
    return [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("AveragePool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["g1"], name="fc1", transB=1),
        helper.make_node("Tanh", ["g1"], ["t"], name="tanh"),
        helper.make_node("MatMul", ["t", "w4"], ["m"], name="fc2"),
        helper.make_node("Add", ["m", "b4"], ["z"], name="fc2_bias"),
        helper.make_node("Softmax", ["z"], ["y"], name="softmax", axis=-1),
    ]


def _lenet_inits():
    return [
        _const("w1", (4, 1, 3, 3)),
        _const("b1", (4,)),
        _const("w2", (8, 4, 3, 3)),
        _const("b2", (8,)),
        _const("w3", (16, 8)),
        _const("b3", (16,)),
        _const("w4", (16, 10)),
        _const("b4", (10,)),
    ]


def test_a_lenet_like_model_is_fully_supported() -> None:
    model = _model(_lenet_nodes(), ["N", 1, 8, 8], ["N", 10], _lenet_inits())
    # The target checks the graph after legalize-fpga, which turns the AveragePool into a depthwise Conv.
    legal, _ = get_target("fpga").legalize(model)
    assert fpga_supports(legal) == []
    assert get_target("fpga").supports(legal) == []


def _bad_net() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="dilated", dilations=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Transpose", ["f"], ["y"], name="transpose", perm=[1, 0]),  # (an identity one is removed)
    ]
    return _proto(nodes, ["N", 1, 9, 9], [4, "N"], [_const("w", (4, 1, 3, 3))])


def test_all_unsupported_nodes_are_reported_at_once() -> None:
    model = ir.from_proto(_bad_net())
    InferShapes()(model)
    found = fpga_supports(model)
    assert [(u.op, u.node) for u in found] == [
        ("Conv", "dilated"),
        ("GlobalAveragePool", "gap"),
        ("Transpose", "transpose"),
    ]


def test_compile_for_fpga_refuses_every_unsupported_node_before_lowering(tmp_path: Path) -> None:
    src = tmp_path / "bad.onnx"
    onnx.save(_bad_net(), src)
    out = tmp_path / "out"
    with pytest.raises(UnsupportedOpError) as info:
        accelc.compile(src, target="fpga", out=out)
    err = info.value
    assert err.target == "fpga"
    # legalize-fpga lowers the dilated Conv (a dense kernel) and the GlobalAveragePool (a full-map pool) exactly.
    assert [u.node for u in err.unsupported] == ["transpose"]
    msg = str(err)
    assert msg.startswith("1 node(s) cannot be lowered to target 'fpga'")
    assert "Transpose" in msg and "\n" not in msg
    assert not out.exists()  # nothing was written


CYCLE_BUG = (
    "circular import: hls/support.py imports accelc.backends.base, which runs backends/__init__.py, "
    "which imports backends/fpga.py, which imports fpga_supports from the half-initialised "
    "accelc.hls.support (exposed since accelc/__init__.py became lazy)"
)


def test_support_module_imports_on_its_own() -> None:
    proc = subprocess.run([sys.executable, "-c", "import accelc.hls.support"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("node", "opset", "inits", "reason"),
    [
        (helper.make_node("ReduceMean", ["x"], ["y"], name="bad_node", axes=[1]), 13, [],
         "ReduceMean over axes [1] of a rank-4 tensor (hls4ml has no reduction layer)"),
        (helper.make_node("ReduceMax", ["x"], ["y"], name="bad_node", axes=[3]), 13, [], "ReduceMax over axes [3]"),
        (helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="bad_node"), 13,
         [numpy_helper.from_array(np.array([0, 2, 3], np.int64), "axes")], "ReduceSum over axes [0, 2, 3]"),
        (helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="bad_node"), 18,
         [numpy_helper.from_array(np.array([1], np.int64), "axes")], "ReduceMean over axes [1]"),
        (helper.make_node("ReduceProd", ["x"], ["y"], name="bad_node", axes=[2, 3]), 13, [],
         "ReduceProd over axes [2, 3] of a rank-4 tensor"),
        (helper.make_node("ReduceL2", ["x"], ["y"], name="bad_node"), 13, [], "ReduceL2 over all axes"),
    ],
)
def test_reductions_left_by_canonicalize_are_refused_with_a_hint(node, opset, inits, reason) -> None:
    proto = _proto([node], [1, 3, 4, 4], None, inits)
    proto.opset_import[0].version = opset
    model = ir.from_proto(proto)
    InferShapes()(model)
    (u,) = fpga_supports(model)
    assert (u.op, u.node) == (node.op_type, "bad_node")
    assert reason in u.reason
    assert "only a mean, max or sum over all spatial axes is lowered, as global pooling" in u.hint
    assert "x.mean((2, 3))" in u.hint
