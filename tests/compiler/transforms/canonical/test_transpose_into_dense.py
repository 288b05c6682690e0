"""TransposeIntoDense: Transpose -> Flatten/Reshape -> Gemm/MatMul becomes Flatten -> Dense with permuted weight
rows; anything else is left. ORT agrees before/after."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper, numpy_helper

from accelc.transforms.canonical import TransposeIntoDense

N = helper.make_node
NHWC = [0, 2, 3, 1]


def _flatten(kind: str) -> tuple[list, list]:
    if kind == "flatten":
        return [N("Flatten", ["t"], ["f"], name="flat")], []
    return [N("Reshape", ["t", "shape"], ["f"], name="flat")], [numpy_helper.from_array(np.array([0, -1]), "shape")]


@pytest.mark.parametrize("kind", ["flatten", "reshape"])
@pytest.mark.parametrize("dense", ["gemm", "gemm_transb", "matmul"])
def test_the_transpose_becomes_a_weight_permutation(kind: str, dense: str) -> None:
    flat, inits = _flatten(kind)
    w = rand(5, 36, seed=1) if dense == "gemm_transb" else rand(36, 5, seed=1)
    node = {"gemm": N("Gemm", ["f", "w", "b"], ["y"], name="fc"),
            "gemm_transb": N("Gemm", ["f", "w", "b"], ["y"], name="fc", transB=1),
            "matmul": N("MatMul", ["f", "w"], ["y"], name="fc")}[dense]
    proto = make([N("Transpose", ["x"], ["t"], name="t", perm=NHWC), *flat, node], {"x": ["N", 4, 3, 3]},
                 {"y": ["N", 5]}, [*inits, const("w", w), const("b", rand(5, seed=2))])
    model = ir.from_proto(proto)
    result = TransposeIntoDense()(model)
    assert result.modified is True and result.stats == {"folded": ["t"]}
    assert ops(model) == [flat[0].op_type, node.op_type]
    assert_same_outputs(proto, model, {"x": rand(3, 4, 3, 3)})


@pytest.mark.parametrize(
    "after",
    [[N("Relu", ["f"], ["y"], name="relu")],  # no Dense after the Flatten
     [N("Gemm", ["f", "w"], ["g"], name="fc"), N("Add", ["t", "t"], ["tt"], name="other"),
      N("Flatten", ["tt"], ["h"], name="f2"), N("Concat", ["g", "h"], ["y"], name="cat", axis=1)]],  # read twice
)  # fmt: skip
def test_other_forms_are_left(after: list) -> None:
    out = ["N", 36] if len(after) == 1 else ["N", 41]
    proto = make([N("Transpose", ["x"], ["t"], name="t", perm=NHWC), N("Flatten", ["t"], ["f"], name="flat"), *after],
                 {"x": ["N", 4, 3, 3]}, {"y": out}, [const("w", rand(36, 5))])
    model = ir.from_proto(proto)
    assert TransposeIntoDense()(model).modified is False
    assert_same_outputs(proto, model, {"x": rand(2, 4, 3, 3)})
