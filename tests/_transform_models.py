"""Tiny seeded ONNX models and an ONNX Runtime harness shared by the canonicalization pass tests."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def const(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def make(
    nodes: list, inputs: dict[str, list], outputs: dict[str, list], inits: list | None = None, opset: int = 13
) -> onnx.ModelProto:
    """A checked model; inputs/outputs map names to shapes ('N' for a symbolic batch)."""
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
        inits or [],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def run(model: ir.Model | onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    proto = ir.to_proto(model) if isinstance(model, ir.Model) else model
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )  # compare graphs, not ORT's fusions
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def assert_same_outputs(
    before: onnx.ModelProto, after: ir.Model, feeds: dict[str, np.ndarray], atol: float = 1e-5
) -> None:
    """ONNX Runtime gives the same numbers on the model before and after a pass."""
    onnx.checker.check_model(ir.to_proto(after), full_check=True)
    for want, got in zip(run(before, feeds), run(after, feeds), strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def ops(model: ir.Model) -> list[str]:
    return [n.op_type for n in model.graph]


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
