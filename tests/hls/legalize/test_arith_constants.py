"""ArithConstants: Sub/Div by a constant -> Add/Mul, batch-axis constants squeezed; ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper

from accelc.hls.legalize import ArithConstants
from accelc.transforms.canonical import InferShapes

X4 = [1, 3, 4, 5]
# (op, constant first?, x shape, constant shape): scalars, per-channel, full-shape, with and without batch axis.
CASES = [
    ("Sub", False, [1, 8], []),
    ("Sub", False, X4, [3, 1, 1]),
    ("Sub", False, X4, [1, 3, 1, 1]),
    ("Div", False, [1, 8], [8]),
    ("Div", False, X4, [1, 3, 1, 1]),
    ("Div", False, [1, 4, 6], [4, 1]),
    ("Mul", False, X4, [1, 3, 1, 1]),
    ("Mul", True, X4, [1, 1, 4, 5]),
    ("Add", False, X4, [1, 1, 1, 1]),
    ("Add", True, [1, 8], [1, 8]),
]


def _model(op: str, const_first: bool, x_shape: list, c_shape: list, c: np.ndarray | None = None):
    c = (1.0 + np.abs(rand(*c_shape, seed=1))) if c is None else c
    inputs = ["k", "x"] if const_first else ["x", "k"]
    return make([helper.make_node(op, inputs, ["y"], name="arith")], {"x": x_shape}, {"y": x_shape}, [const("k", c)])


def _run(proto) -> tuple[ir.Model, object]:
    model = ir.from_proto(proto)
    InferShapes()(model)
    return model, ArithConstants()(model)


@pytest.mark.parametrize(("op", "const_first", "x_shape", "c_shape"), CASES)
def test_rewrite_is_exact_and_keeps_the_name(op: str, const_first: bool, x_shape: list, c_shape: list) -> None:
    proto = _model(op, const_first, x_shape, c_shape)
    model, result = _run(proto)
    assert_same_outputs(proto, model, {"x": rand(*x_shape)}, atol=1e-5)
    node = next(iter(model.graph))
    assert node.name == "arith"
    if op in ("Sub", "Div") and not const_first:
        assert ops(model) == [{"Sub": "Add", "Div": "Mul"}[op]]
        assert result.stats["sub_to_add" if op == "Sub" else "div_to_mul"] == 1
    k = next(v for v in node.inputs if v.const_value is not None)
    # No constant keeps a batch axis: it would crash QONNX's channels-last conversion.
    assert len(k.const_value.shape) < len(x_shape)
    squeezable = len(c_shape) == len(x_shape) and c_shape[0] == 1
    assert result.modified == (op in ("Sub", "Div") and not const_first or squeezable)
    assert result.stats["squeezed"] == int(squeezable)


def test_nothing_to_do_is_not_modified() -> None:
    proto = _model("Mul", False, X4, [3, 1, 1])
    model, result = _run(proto)
    assert not result.modified and result.stats == {"sub_to_add": 0, "div_to_mul": 0, "squeezed": 0}


@pytest.mark.parametrize("first", [True, False])
def test_constant_first_sub_and_div_are_left(first: bool) -> None:
    # c - x stays (hls4ml lowers it), c / x is not linear; x / 0 would not be exact as x * inf.
    proto = _model("Div", first, [1, 8], [8], c=np.zeros(8) if not first else None)
    model, result = _run(proto)
    assert ops(model) == ["Div"] and not result.modified


def test_two_computed_tensors_are_left() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="r"), helper.make_node("Sub", ["x", "r"], ["y"], name="s")]
    proto = make(nodes, {"x": [1, 8]}, {"y": [1, 8]})
    model, result = _run(proto)
    assert ops(model) == ["Relu", "Sub"] and not result.modified
