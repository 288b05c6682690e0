"""accelc.analysis: per-node shapes, parameter counts and MACs per sample, checked by hand."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelc.analysis import analyze, node_macs, node_params
from accelc.transforms.canonical import InferShapes


def _const(name: str, shape: tuple[int, ...], seed: int = 0) -> onnx.TensorProto:
    return numpy_helper.from_array(
        np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name
    )


def _model(nodes, in_shape, out_shape, inits) -> ir.Model:
    graph = helper.make_graph(
        nodes,
        "a",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    onnx.checker.check_model(proto, full_check=True)
    model = ir.from_proto(proto)
    InferShapes()(model)
    return model


@pytest.fixture(scope="module")
def infos():
    nodes = [
        # 4 -> 8 channels, 3x3, pads 1: out 8x6x6; MACs = 8*6*6 * 4*3*3
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
        # grouped: 8 -> 8, group 4 (2 in-channels per group), 3x3, stride 2: out 8x2x2
        helper.make_node("Conv", ["c1", "w2"], ["c2"], name="gconv", group=4, strides=[2, 2]),
        # depthwise: group 8, 1x1
        helper.make_node("Conv", ["c2", "w3"], ["c3"], name="dwconv", group=8),
        helper.make_node("Relu", ["c3"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["g1"], name="fc_t", transB=1),  # 32 -> 10, W (10, 32)
        helper.make_node("Gemm", ["g1", "w5", "b5"], ["g2"], name="fc"),  # 10 -> 7, W (10, 7)
        helper.make_node("MatMul", ["g2", "w6"], ["y"], name="mm"),  # 7 -> 5
    ]
    inits = [
        _const("w1", (8, 4, 3, 3)),
        _const("b1", (8,)),
        _const("w2", (8, 2, 3, 3)),
        _const("w3", (8, 1, 1, 1)),
        _const("w4", (10, 32)),
        _const("b4", (10,)),
        _const("w5", (10, 7)),
        _const("b5", (7,)),
        _const("w6", (7, 5)),
    ]
    model = _model(nodes, ["N", 4, 6, 6], ["N", 5], inits)
    return {i.name: i for i in analyze(model)}


@pytest.mark.parametrize(
    ("name", "op", "shape", "params", "macs"),
    [
        ("conv", "Conv", [8, 6, 6], 8 * 4 * 9 + 8, 8 * 6 * 6 * 4 * 9),
        ("gconv", "Conv", [8, 2, 2], 8 * 2 * 9, 8 * 2 * 2 * 2 * 9),
        ("dwconv", "Conv", [8, 2, 2], 8, 8 * 2 * 2),
        ("relu", "Relu", [8, 2, 2], 0, 0),
        ("flat", "Flatten", [32], 0, 0),
        ("fc_t", "Gemm", [10], 10 * 32 + 10, 10 * 32),
        ("fc", "Gemm", [7], 10 * 7 + 7, 10 * 7),
        ("mm", "MatMul", [5], 7 * 5, 7 * 5),
    ],
)
def test_node_figures(infos, name: str, op: str, shape: list, params: int, macs: int) -> None:
    info = infos[name]
    assert info.op == op
    assert info.shape[1:] == shape
    assert info.shape[0] == "N"  # the symbolic batch is kept as its name
    assert info.params == params
    assert info.macs == macs


def test_batched_matmul_of_two_activations() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="r"),
        helper.make_node("MatMul", ["x", "r"], ["y"], name="mm"),
    ]
    model = _model(nodes, ["N", 3, 3], ["N", 3, 3], [])
    mm = next(n for n in model.graph if n.name == "mm")
    assert node_params(mm) == 0
    assert node_macs(mm) == 3 * 3 * 3  # per sample: a 3x3 by 3x3 product


def test_unknown_shapes_give_zero_macs() -> None:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "a",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [_const("w", (4, 2))],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model = ir.from_proto(proto)
    mm = model.graph.node(0)
    mm.outputs[0].shape = None
    assert node_macs(mm) == 0
    assert node_params(mm) == 8
