"""GemmToMatMul: a float Gemm becomes MatMul (+ Add of the bias), the output node keeping the name; ORT agrees."""

from __future__ import annotations

import itertools

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import TensorProto, helper, numpy_helper

from accelc.hls.legalize import GemmToMatMul

BIASES = {"none": None, "row": (5,), "batch_row": (1, 5), "scalar": ()}


def _gemm(trans_b: int, alpha: float, beta: float, bias: str) -> tuple:
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 6) if trans_b else (6, 5))
    inits = [const("w", w)]
    inputs = ["x", "w"]
    if BIASES[bias] is not None:
        inits.append(const("b", rng.standard_normal(BIASES[bias])))
        inputs.append("b")
    node = helper.make_node("Gemm", inputs, ["y"], name="fc", transB=trans_b, alpha=alpha, beta=beta)
    return make([node], {"x": ["N", 6]}, {"y": ["N", 5]}, inits)


@pytest.mark.parametrize("trans_b,alpha,beta,bias", list(itertools.product([0, 1], [1.0, 0.5], [1.0, 2.0], BIASES)))
def test_gemm_becomes_matmul_and_add(trans_b: int, alpha: float, beta: float, bias: str) -> None:
    proto = _gemm(trans_b, alpha, beta, bias)
    model = ir.from_proto(proto)
    result = GemmToMatMul()(model)
    assert result.modified and result.warnings == []
    nodes = {n.name: n for n in model.graph}
    if bias == "none":  # the MatMul computes the Gemm's output: it keeps its name
        assert ops(model) == ["MatMul"] and nodes["fc"].outputs[0].name == "y"
        assert result.stats == {"with_bias": 0, "without_bias": 1}
    else:  # the Add produces the Gemm's output and keeps its name; the MatMul is new
        assert ops(model) == ["MatMul", "Add"] and nodes["fc"].op_type == "Add" and "fc_matmul" in nodes
        assert nodes["fc"].outputs[0].name == "y" and nodes["fc"].inputs[0] is nodes["fc_matmul"].outputs[0]
        assert nodes["fc"].inputs[1].const_value.numpy().ndim == 1  # a row, as hls4ml's ApplyAlpha takes it
        assert result.stats == {"with_bias": 1, "without_bias": 0}
    assert not any(n.attributes for n in model.graph)
    assert "w" not in model.graph.initializers and "b" not in model.graph.initializers  # the originals go
    assert_same_outputs(proto, model, {"x": rand(4, 6)})


def test_computed_bias_with_beta_one_is_added_as_it_is() -> None:
    nodes = [helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Gemm", ["x", "w", "r"], ["y"], name="fc", transB=1)]
    proto = make(nodes, {"x": ["N", 6], "c": [1, 5]}, {"y": ["N", 5]}, [const("w", rand(5, 6))])
    model = ir.from_proto(proto)
    assert GemmToMatMul()(model).modified
    add = next(n for n in model.graph if n.name == "fc")
    assert add.op_type == "Add" and add.inputs[1].name == "r"
    assert_same_outputs(proto, model, {"x": rand(3, 6), "c": rand(1, 5, seed=1)})


@pytest.mark.parametrize("case,reason", [
    ("trans_a", "transA=1"),
    ("computed_weight", "B is not a constant"),
    ("computed_bias_beta", "beta=2.0 on a computed bias"),
    ("bias_rows", "shape [3, 5]"),
])
def test_forms_it_cannot_rewrite_are_kept_with_the_reason(case: str, reason: str) -> None:
    inits, inputs, attrs, shapes = [const("w", rand(6, 5))], ["x", "w"], {}, {"x": ["N", 6]}
    if case == "trans_a":
        attrs, shapes = {"transA": 1}, {"x": [6, "N"]}
    elif case == "computed_weight":
        inits, shapes = [], {"x": ["N", 6], "w": [6, 5]}
    elif case == "computed_bias_beta":
        inputs, attrs, shapes = ["x", "w", "c"], {"beta": 2.0}, {"x": ["N", 6], "c": [5]}
    else:
        inits, inputs, shapes = [*inits, const("b", rand(3, 5))], ["x", "w", "b"], {"x": [3, 6]}
    model = ir.from_proto(make([helper.make_node("Gemm", inputs, ["y"], name="fc", **attrs)], shapes,
                               {"y": [None, 5]}, inits))
    result = GemmToMatMul()(model)
    assert not result.modified and ops(model) == ["Gemm"]
    assert len(result.warnings) == 1 and "'fc' kept" in result.warnings[0] and reason in result.warnings[0]


def test_a_quantized_weight_is_left_for_prepare() -> None:
    """Gemm(DequantizeLinear(int8 W)): its transpose belongs under the QONNX Quant node that prepare makes."""
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"], name="w_dq"),
             helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)]
    inits = [numpy_helper.from_array(np.ones((5, 6), np.int8), "wq"), const("s", 0.5),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    graph = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits)
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    result = GemmToMatMul()(model)
    assert not result.modified and ops(model) == ["DequantizeLinear", "Gemm"]
    assert "quantized" in result.warnings[0] and "accelc.hls.prepare" in result.warnings[0]
