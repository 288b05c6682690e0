"""InferShapes: every node output gets a static shape; what cannot be inferred is reported."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from _transform_models import assert_same_outputs, const, make, rand, run
from onnx import TensorProto, helper

from accelc.transforms.canonical import InferShapes


def test_every_value_gets_a_shape() -> None:
    rng = np.random.default_rng(0)
    model_proto = make(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv", strides=[2, 2]),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("Flatten", ["r"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", "w2"], ["y"], name="fc", transB=1),
        ],
        {"x": ["N", 1, 7, 7]},
        {"y": ["N", 5]},
        [const("w", rng.standard_normal((2, 1, 3, 3))), const("w2", rng.standard_normal((5, 18)))],
    )
    model = ir.from_proto(model_proto)
    assert model.graph.node(0).outputs[0].shape is None  # no value_info to begin with
    result = InferShapes()(model)
    assert result.modified is True
    assert result.stats == {"unknown_shapes": 0}
    assert result.warnings == []
    shapes = {v.name: list(v.shape)[1:] for n in model.graph for v in n.outputs}
    assert shapes == {"c": [2, 3, 3], "r": [2, 3, 3], "f": [18], "y": [5]}
    assert_same_outputs(model_proto, model, {"x": rand(2, 1, 7, 7)})


def test_unknown_shapes_are_reported() -> None:
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["x", "s"], ["r"], name="reshape"),
            helper.make_node("Relu", ["r"], ["y"], name="relu"),
        ],
        "dyn",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6]),
            helper.make_tensor_value_info("s", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "M"])],
    )
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model_proto.ir_version = 8
    onnx.checker.check_model(model_proto, full_check=True)
    model = ir.from_proto(model_proto)
    result = InferShapes()(model)
    assert result.stats["unknown_shapes"] >= 1
    assert len(result.warnings) == 1 and "not fully inferred" in result.warnings[0]
    feeds = {"x": rand(2, 6), "s": np.array([2, 6], np.int64)}
    np.testing.assert_allclose(run(model, feeds)[0], run(model_proto, feeds)[0], rtol=0, atol=0)
