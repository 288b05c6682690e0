"""GlobalPool: global pooling becomes one window over the whole map; ONNX Runtime agrees before/after."""

from __future__ import annotations

import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, make, ops, rand
from onnx import helper

from accelc.hls.legalize import GlobalPool


@pytest.mark.parametrize("op,local", [("GlobalAveragePool", "AveragePool"), ("GlobalMaxPool", "MaxPool")])
@pytest.mark.parametrize("size", [[7], [5, 6]])
def test_global_pool_is_a_full_window(op: str, local: str, size: list[int]) -> None:
    proto = make([helper.make_node(op, ["x"], ["y"], name="gp")], {"x": ["N", 3, *size]},
                 {"y": ["N", 3, *[1] * len(size)]})
    model = ir.from_proto(proto)
    result = GlobalPool()(model)
    node = next(iter(model.graph))
    assert result.modified and ops(model) == [local] and node.name == "gp"
    assert result.stats == {"rewritten": {op: 1}}
    assert list(node.attributes["kernel_shape"].value) == size == list(node.attributes["strides"].value)
    assert_same_outputs(proto, model, {"x": rand(2, 3, *size)})


def test_dynamic_map_is_left_alone() -> None:
    proto = make([helper.make_node("GlobalMaxPool", ["x"], ["y"], name="gp")], {"x": ["N", 3, "H"]},
                 {"y": ["N", 3, 1]})
    model = ir.from_proto(proto)
    result = GlobalPool()(model)
    assert not result.modified and result.warnings
