"""ExporterCleanup: ONNX Runtime's basic optimizer on a Keras-style channels-last graph (Casts, Transposes around
the Conv and pool, Flatten as a Shape chain); declined on quantized graphs and where its result would differ."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from _transform_models import assert_same_outputs, const, make, ops, rand
from onnx import TensorProto, helper, numpy_helper

from accelc.transforms.canonical import ExporterCleanup, exporter_cleanup

N = helper.make_node
NHWC, NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def _i64(name: str, values) -> object:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def _keras_cnn() -> object:
    """What Keras 3 (torch backend) writes for Conv2D(relu) -> MaxPooling2D -> Flatten -> Dense."""
    nodes = [
        N("Cast", ["x"], ["x1"], name="/Cast", to=TensorProto.FLOAT),
        N("Transpose", ["x1"], ["t0"], name="/Transpose", perm=NCHW),
        N("Conv", ["t0", "w"], ["c"], name="/Conv"),
        N("Transpose", ["c"], ["t1"], name="/Transpose_1", perm=NHWC),
        N("Add", ["t1", "b"], ["a"], name="/Add"),
        N("Cast", ["a"], ["a1"], name="/Cast_1", to=TensorProto.FLOAT),
        N("Relu", ["a1"], ["r"], name="/Relu"),
        N("Transpose", ["r"], ["t2"], name="/Transpose_2", perm=NCHW),
        N("MaxPool", ["t2"], ["p"], name="/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        N("Transpose", ["p"], ["t3"], name="/Transpose_3", perm=NHWC),
        N("Shape", ["t3"], ["s"], name="/Shape"),
        N("Gather", ["s", "zero"], ["n"], name="/Gather", axis=0),
        N("Unsqueeze", ["n", "axes0"], ["n1"], name="/Unsqueeze"),
        N("Concat", ["n1", "minus1"], ["shape"], name="/Concat", axis=0),
        N("Reshape", ["t3", "shape"], ["f"], name="/Reshape"),
        N("MatMul", ["f", "fc"], ["m"], name="/MatMul"),
        N("Add", ["m", "fc_b"], ["y"], name="/Add_1"),
    ]
    inits = [const("w", rand(4, 3, 3, 3)), const("b", rand(4, seed=1)), const("fc", rand(36, 5, seed=2)),
             const("fc_b", rand(5, seed=3)), _i64("zero", 0), _i64("axes0", [0]), _i64("minus1", [-1])]
    return make(nodes, {"x": ["N", 8, 8, 3]}, {"y": ["N", 5]}, inits)


def test_a_keras_cnn_is_cleaned_up_exactly() -> None:
    proto = _keras_cnn()
    model = ir.from_proto(proto)
    result = ExporterCleanup()(model)
    assert result.modified is True
    assert result.stats["removed"] == {"Transpose": 2, "Cast": 2, "Shape": 1}
    assert ops(model) == ["Transpose", "Conv", "Relu", "MaxPool", "Transpose", "Reshape", "Gemm"]
    names = [n.name for n in model.graph]
    assert names[:4] == ["/Transpose", "/Conv", "/Relu", "/MaxPool"]  # ORT keeps the node names
    assert set(model.opset_imports) == {""}  # not every domain ORT knows
    assert_same_outputs(proto, model, {"x": rand(3, 8, 8, 3)})


def test_a_quantized_graph_is_declined() -> None:
    proto = make(
        [N("QuantizeLinear", ["x", "scale", "zp"], ["q"], name="q"), N("DequantizeLinear", ["q", "scale", "zp"],
         ["d"], name="dq"), N("Transpose", ["d"], ["y"], name="t", perm=NHWC)],
        {"x": ["N", 2, 3, 3]}, {"y": ["N", 3, 3, 2]},
        [const("scale", 0.1), numpy_helper.from_array(np.array(0, np.uint8), "zp")],
    )  # fmt: skip
    model = ir.from_proto(proto)
    result = ExporterCleanup()(model)
    assert result.modified is False
    assert "quantized graph" in result.warnings[0]
    assert ops(model) == ["QuantizeLinear", "DequantizeLinear", "Transpose"]


def test_a_graph_without_transposes_is_not_touched() -> None:
    proto = make([N("Cast", ["x"], ["y"], name="cast", to=TensorProto.FLOAT)], {"x": ["N", 3]}, {"y": ["N", 3]})
    model = ir.from_proto(proto)
    result = ExporterCleanup()(model)
    assert result.modified is False and not result.warnings
    assert ops(model) == ["Cast"]


def test_a_result_that_differs_is_not_taken(monkeypatch) -> None:
    """The guard: ORT's graph is compared with the graph before on seeded inputs."""
    proto = _keras_cnn()
    wrong = _keras_cnn()
    wrong.graph.initializer[1].CopyFrom(const("b", rand(4, seed=9)))  # another bias

    monkeypatch.setattr(exporter_cleanup, "optimize", lambda _: wrong)
    model = ir.from_proto(proto)
    result = ExporterCleanup()(model)
    assert result.modified is False
    assert "differs from the graph before" in result.warnings[0]
    assert len(ops(model)) == len(proto.graph.node)
