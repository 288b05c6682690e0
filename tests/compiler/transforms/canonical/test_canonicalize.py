"""Canonicalize: the fixed pipeline every model goes through (opset, no-ops, constants, BN, shapes, names)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import helper

from accelc.passes import REGISTRY, PassContext, create_pass
from accelc.transforms.canonical import Canonicalize

STEPS = [  # written out, not read from canonical_passes(): a reordering must be a visible change
    "normalize-opset",
    "remove-noops",
    "constants-to-initializers",
    "transpose-quantized-weight",
    "free-batch",
    "exporter-cleanup",
    "fold-constants",
    "constants-to-initializers",
    "fold-shape-arithmetic",
    "constants-to-initializers",
    "reshape-to-flatten",
    "remove-noop-casts",
    "unsqueezed-batchnorm",
    "fold-batchnorm",
    "fold-constants",
    "sink-transposes",
    "absorb-input-layout",
    "transpose-into-dense",
    "fold-channel-affine",
    "reduce-to-pool",
    "fold-input-scale",
    "infer-shapes",
    "name-nodes",
]


def _conv_net():
    """Conv-BN-Relu-Dropout-MaxPool-Flatten-Identity-Gemm(+constant-subgraph bias)-Softmax, mostly unnamed."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Dropout", ["r"], ["d"]),
        helper.make_node("MaxPool", ["d"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1),
        helper.make_node("Identity", ["f"], ["fi"]),
        helper.make_node("Mul", ["half", "gb"], ["gb2"]),  # a constant subgraph
        helper.make_node("Gemm", ["fi", "gw", "gb2"], ["g"], transB=1),
        helper.make_node("Softmax", ["g"], ["y"], axis=-1),
    ]
    inits = [
        const("w", rng.standard_normal((3, 1, 3, 3))),
        const("b", rng.standard_normal(3)),
        const("s", rng.uniform(0.5, 1.5, 3)),
        const("bb", rng.standard_normal(3)),
        const("m", rng.standard_normal(3)),
        const("v", rng.uniform(0.5, 1.5, 3)),
        const("gw", 0.3 * rng.standard_normal((5, 27))),
        const("gb", rng.standard_normal(5)),
        const("half", 0.5),
    ]
    return make(nodes, {"x": ["N", 1, 6, 6]}, {"y": ["N", 5]}, inits)


def test_canonicalize_a_conv_net() -> None:
    model_proto = _conv_net()
    model = ir.from_proto(model_proto)
    canon = Canonicalize()
    result = canon(model)

    assert result.modified is True
    assert ops(model) == ["Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Softmax"]  # Flatten stays a Flatten
    names = [n.name for n in model.graph]
    assert all(names) and len(set(names)) == len(names)
    for node in model.graph:
        for v in node.outputs:
            assert v.shape is not None and all(isinstance(d, int) for d in list(v.shape)[1:]), v.name
    gemm = next(n for n in model.graph if n.op_type == "Gemm")
    assert all(i.const_value is not None for i in gemm.inputs[1:])  # the Mul was folded into the bias
    assert [r.name for r in canon.records] == STEPS
    assert result.stats["fold-batchnorm"] == {"folded": 1, "kept": 0}
    assert result.stats["infer-shapes"] == {"unknown_shapes": 0}
    assert_same_outputs(model_proto, model, {"x": rand(4, 1, 6, 6)})


def test_canonicalize_is_idempotent() -> None:
    model = ir.from_proto(_conv_net())
    Canonicalize()(model)
    before = [(n.name, n.op_type) for n in model.graph]
    again = Canonicalize()
    result = again(model)
    assert result.modified is False
    assert [r.modified for r in again.records] == [False] * len(STEPS)
    assert [(n.name, n.op_type) for n in model.graph] == before


def test_canonicalize_is_registered_and_takes_a_context() -> None:
    ctx = PassContext(target="fpga")
    p = create_pass("canonicalize", ctx)
    assert REGISTRY["canonicalize"] is Canonicalize
    assert isinstance(p, Canonicalize)
    assert all(step.context is ctx for step in p.pipeline.passes)
