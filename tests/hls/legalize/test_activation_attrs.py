"""ActivationAttrs: ONNX's default alpha written out (hls4ml assumes 0.01); ORT agrees before/after."""

from __future__ import annotations

import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, make, rand
from onnx import helper

from accelc.hls.legalize import ActivationAttrs


@pytest.mark.parametrize(("op", "alpha"), [("Elu", 1.0), ("ThresholdedRelu", 1.0), ("LeakyRelu", 0.01)])
def test_missing_alpha_gets_the_onnx_default(op: str, alpha: float) -> None:
    proto = make([helper.make_node(op, ["x"], ["y"], name="act")], {"x": [2, 8]}, {"y": [2, 8]})
    model = ir.from_proto(proto)
    result = ActivationAttrs()(model)
    node = next(iter(model.graph))
    assert result.modified and result.stats == {"explicit": {op: 1}}
    assert node.name == "act" and node.attributes["alpha"].value == pytest.approx(alpha)
    assert_same_outputs(proto, model, {"x": 3 * rand(2, 8)})


def test_given_alpha_is_kept() -> None:
    proto = make([helper.make_node("Elu", ["x"], ["y"], name="act", alpha=0.3)], {"x": [2, 8]}, {"y": [2, 8]})
    model = ir.from_proto(proto)
    result = ActivationAttrs()(model)
    assert not result.modified
    assert next(iter(model.graph)).attributes["alpha"].value == pytest.approx(0.3)
