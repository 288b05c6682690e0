"""accelc.backends: the explicit target dict and each target's support check before lowering."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelc.backends import TARGETS, Unsupported, get_target
from accelc.errors import AccelcError
from accelc.transforms.canonical import InferShapes


def _model(nodes, inits=(), extra_opsets=(), infer: bool = True) -> ir.Model:
    graph = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        list(inits),
    )
    opsets = [helper.make_opsetid("", 13), *(helper.make_opsetid(d, 1) for d in extra_opsets)]
    proto = helper.make_model(graph, opset_imports=opsets)
    proto.ir_version = 8
    model = ir.from_proto(proto)
    if infer:  # shape inference (and its checker) refuses a node that is no operator
        InferShapes()(model)
    return model


def _plain() -> ir.Model:
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32), "w")
    return _model(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
            helper.make_node("Relu", ["h"], ["y"], name="relu"),
        ],
        [w],
    )


def test_targets_dict_and_lookup() -> None:
    assert set(TARGETS) == {"cpu", "cuda", "fpga"}
    for name, target in TARGETS.items():
        assert target.name == name
        assert get_target(name) is target
        for method in ("supports", "lower", "runner"):
            assert callable(getattr(target, method))


def test_unknown_target_lists_the_choices() -> None:
    with pytest.raises(AccelcError, match="unknown target 'tpu'; choose one of: cpu, cuda, fpga"):
        get_target("tpu")


@pytest.mark.parametrize("name", ["cpu", "cuda", "fpga"])
def test_a_plain_model_is_supported_everywhere(name: str) -> None:
    assert get_target(name).supports(_plain()) == []


@pytest.mark.parametrize("name", ["cpu", "cuda"])
def test_ort_targets_flag_a_custom_domain_node(name: str) -> None:
    model = _model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="relu"),
            helper.make_node("MyOp", ["a"], ["y"], name="custom", domain="com.example"),
        ],
        extra_opsets=["com.example"],
    )
    (u,) = get_target(name).supports(model)
    assert isinstance(u, Unsupported)
    assert (u.op, u.node, u.target) == ("MyOp", "custom", name)
    assert "custom domain 'com.example'" in u.reason
    assert u.hint and "ONNX Runtime" in u.hint
    assert str(u).startswith(f"MyOp node 'custom' on {name}: ")


@pytest.mark.parametrize("name", ["cpu", "cuda"])
def test_ort_targets_flag_an_unknown_default_domain_op(name: str) -> None:
    model = _model([helper.make_node("NotAnOp", ["x"], ["y"], name="bogus")], infer=False)
    (u,) = get_target(name).supports(model)
    assert (u.op, u.node, u.target) == ("NotAnOp", "bogus", name)
    assert "not an ONNX operator at opset 13" in u.reason


def test_ort_targets_accept_the_microsoft_domain() -> None:
    model = _model(
        [helper.make_node("Gelu", ["x"], ["y"], name="gelu", domain="com.microsoft")],
        extra_opsets=["com.microsoft"],
    )
    assert get_target("cpu").supports(model) == []


def test_fpga_flags_every_unsupported_node_with_its_target() -> None:
    model = _model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="relu"),
            helper.make_node("Erf", ["a"], ["b"], name="erf"),
            helper.make_node("MyOp", ["b"], ["y"], name="custom", domain="com.example"),
        ],
        extra_opsets=["com.example"],
    )
    found = get_target("fpga").supports(model)
    assert [(u.op, u.node, u.target) for u in found] == [("Erf", "erf", "fpga"), ("MyOp", "custom", "fpga")]
    assert get_target("cpu").supports(model)[0].node == "custom"  # cpu only minds the custom op


def test_unsupported_to_dict() -> None:
    u = Unsupported("Conv", "c1", "fpga", "dilations=[2, 2]", "re-export")
    assert u.to_dict() == {
        "op": "Conv",
        "node": "c1",
        "target": "fpga",
        "reason": "dilations=[2, 2]",
        "hint": "re-export",
    }
    assert str(u) == "Conv node 'c1' on fpga: dilations=[2, 2] (hint: re-export)"
    assert str(Unsupported("Conv", "c1", "fpga", "r")) == "Conv node 'c1' on fpga: r"


def test_onnx_checker_agrees_the_test_models_are_valid() -> None:
    onnx.checker.check_model(ir.to_proto(_plain()), full_check=True)
