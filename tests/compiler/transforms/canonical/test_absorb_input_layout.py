"""AbsorbInputLayout: an NHWC input read through Transpose(0,3,1,2) becomes an NCHW graph input, the perm recorded
in the model's metadata; inputs whose Transpose cannot be reached exactly are left as they were."""

from __future__ import annotations

import json

import numpy as np
import onnx_ir as ir
from _transform_models import const, make, ops, rand, run
from onnx import helper, numpy_helper

from accelc.spec import LAYOUT_KEY, TensorSpec, with_absorbed_layouts
from accelc.transforms.canonical import AbsorbInputLayout

N = helper.make_node
NCHW = [0, 3, 1, 2]


def _keras_input(extra=()) -> object:
    """x (NHWC) -> x / 255 (a Rescaling) -> Transpose to NCHW -> Conv."""
    return make(
        [N("Mul", ["x", "k"], ["s"], name="rescale"), N("Transpose", ["s"], ["t"], name="to_nchw", perm=NCHW),
         N("Conv", ["t", "w"], ["y"], name="conv"), *extra],
        {"x": ["N", 5, 6, 3]}, {"y": ["N", 2, 5, 6], **({"z": ["N", 90]} if extra else {})},
        [numpy_helper.from_array(np.array(1 / 255, np.float32), "k"), const("w", rand(2, 3, 1, 1))],
    )  # fmt: skip


def test_the_input_becomes_nchw_and_the_perm_is_recorded() -> None:
    proto = _keras_input()
    model = ir.from_proto(proto)
    result = AbsorbInputLayout()(model)
    assert result.modified is True
    assert result.stats == {"absorbed": {"x": NCHW}}
    assert ops(model) == ["Mul", "Conv"]
    assert list(model.graph.inputs[0].shape)[1:] == [3, 5, 6]
    assert json.loads(model.metadata_props[LAYOUT_KEY]) == {"inputs": {"x": NCHW}}
    x = rand(2, 5, 6, 3)
    spec = with_absorbed_layouts([TensorSpec("x", (1, 5, 6, 3), layout="NHWC")], model.metadata_props)[0]
    assert spec.perm == (0, 3, 1, 2) and spec.graph_shape == (1, 3, 5, 6)
    np.testing.assert_allclose(run(model, {"x": spec.to_graph(x)})[0], run(proto, {"x": x})[0], rtol=0, atol=1e-5)
    assert spec.to_dict()["perm"] == NCHW and TensorSpec.from_dict(spec.to_dict()) == spec


def test_an_input_also_read_in_nhwc_is_left_alone() -> None:
    proto = _keras_input([N("Flatten", ["x"], ["z"], name="flat")])
    model = ir.from_proto(proto)
    result = AbsorbInputLayout()(model)
    assert result.modified is False
    assert "could not be absorbed" in result.warnings[0]
    assert ops(model) == ["Mul", "Transpose", "Conv", "Flatten"]
    assert LAYOUT_KEY not in model.metadata_props


def test_a_graph_without_layout_transposes_is_not_touched() -> None:
    proto = make([N("Relu", ["x"], ["y"], name="relu")], {"x": ["N", 3, 4, 4]}, {"y": ["N", 3, 4, 4]})
    model = ir.from_proto(proto)
    result = AbsorbInputLayout()(model)
    assert result.modified is False and not result.warnings
