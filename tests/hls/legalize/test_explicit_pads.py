"""ExplicitPads: auto_pad becomes explicit pads; ONNX Runtime agrees before/after over the spec's modes."""

from __future__ import annotations

import itertools

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, rand, run
from onnx import helper
from onnx.reference import ReferenceEvaluator

from accelc.hls.legalize import ExplicitPads

MODES = ["SAME_UPPER", "SAME_LOWER", "VALID"]


def _out(size: int, k: int, s: int, d: int, mode: str) -> int:
    return -(-size // s) if mode != "VALID" else (size - (k - 1) * d - 1) // s + 1


@pytest.mark.parametrize("mode,stride,dil,dims", list(itertools.product(MODES, [1, 2, 3], [1, 2], [1, 2])))
def test_conv_auto_pad(mode: str, stride: int, dil: int, dims: int) -> None:
    size, k = [7, 8][:dims], [3, 2][:dims]
    w = np.random.default_rng(1).standard_normal((2, 3, *k))
    out = [_out(s, kk, stride, dil, mode) for s, kk in zip(size, k)]
    proto = make([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", auto_pad=mode, strides=[stride] * dims,
                                   dilations=[dil] * dims)],
                 {"x": ["N", 3, *size]}, {"y": ["N", 2, *out]}, [const("w", w)])
    model = ir.from_proto(proto)
    result = ExplicitPads()(model)
    node = next(iter(model.graph))
    assert result.modified and "auto_pad" not in node.attributes and len(node.attributes["pads"].value) == 2 * dims
    assert result.stats == {"rewritten": {f"Conv:{mode}": 1}}
    x = rand(2, 3, *size)
    # ONNX Runtime refuses dilated SAME convs, so the reference is onnx's own evaluator.
    np.testing.assert_allclose(run(model, {"x": x})[0], ReferenceEvaluator(proto).run(None, {"x": x})[0], atol=1e-5)


@pytest.mark.parametrize("op,mode,stride", list(itertools.product(["MaxPool", "AveragePool"], MODES, [1, 2])))
def test_pool_auto_pad(op: str, mode: str, stride: int) -> None:
    out = [_out(s, 3, stride, 1, mode) for s in (6, 7)]
    proto = make([helper.make_node(op, ["x"], ["y"], name="pool", auto_pad=mode, kernel_shape=[3, 3],
                                   strides=[stride, stride])], {"x": ["N", 2, 6, 7]}, {"y": ["N", 2, *out]})
    model = ir.from_proto(proto)
    assert ExplicitPads()(model).modified
    assert_same_outputs(proto, model, {"x": rand(2, 2, 6, 7)})


def test_notset_is_left_alone() -> None:
    proto = make([helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2])],
                 {"x": ["N", 2, 6]}, {"y": ["N", 2, 5]})
    model = ir.from_proto(proto)
    assert not ExplicitPads()(model).modified
