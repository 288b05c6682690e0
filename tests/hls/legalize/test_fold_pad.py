"""FoldPad: a zero constant spatial Pad before Convs folds into their pads; ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper, numpy_helper, shape_inference

from accelc.hls.legalize import FoldPad


def _pad_model(pads: list[int], conv_pads: list[int], mode: str = "constant", value: float = 0.0,
               opset: int = 13, users: int = 1):
    rng = np.random.default_rng(3)
    inits = [const("w", rng.standard_normal((2, 3, 3, 3)))]
    if opset >= 11:
        inits += [numpy_helper.from_array(np.array(pads, dtype=np.int64), "pads"), const("v", value)]
        pad = helper.make_node("Pad", ["x", "pads", "v"], ["p"], name="pad", mode=mode)
    else:
        pad = helper.make_node("Pad", ["x"], ["p"], name="pad", mode=mode, pads=pads, value=value)
    convs = [helper.make_node("Conv", ["p", "w"], [f"y{i}"], name=f"conv{i}", pads=conv_pads) for i in range(users)]
    outputs = {f"y{i}": ["N", 2, None, None] for i in range(users)}
    proto = make([pad, *convs], {"x": ["N", 3, 6, 7]}, outputs, inits, opset=opset)
    return shape_inference.infer_shapes(proto)


@pytest.mark.parametrize("opset", [10, 13])
@pytest.mark.parametrize("pads,conv_pads", [([0, 0, 1, 1, 0, 0, 1, 1], [0, 0, 0, 0]),
                                            ([0, 0, 2, 0, 0, 0, 1, 3], [1, 1, 1, 1])])
def test_zero_pad_folds_into_convs(opset: int, pads: list[int], conv_pads: list[int]) -> None:
    proto = _pad_model(pads, conv_pads, opset=opset, users=2)
    model = ir.from_proto(proto)
    result = FoldPad()(model)
    assert result.modified and ops(model) == ["Conv", "Conv"] and result.stats == {"rewritten": {"Pad": 1}}
    assert "pads" not in model.graph.initializers
    assert_same_outputs(proto, model, {"x": rand(2, 3, 6, 7)})


@pytest.mark.parametrize("pads,mode,value", [([0, 0, 1, 1, 0, 0, 1, 1], "reflect", 0.0),
                                             ([0, 0, 1, 1, 0, 0, 1, 1], "constant", 1.0),
                                             ([0, 1, 1, 1, 0, 0, 1, 1], "constant", 0.0),
                                             ([0, 0, -1, 0, 0, 0, 1, 1], "constant", 0.0)])
def test_other_pads_are_kept(pads: list[int], mode: str, value: float) -> None:
    model = ir.from_proto(_pad_model(pads, [0, 0, 0, 0], mode=mode, value=value))
    result = FoldPad()(model)
    assert not result.modified and ops(model) == ["Pad", "Conv"] and result.warnings
