"""fpga lowering of axis-dependent ops: Softmax/LogSoftmax on any non-batch axis (accelc's handlers set hls4ml's
n_outer/n_inner) and Concat on any axis, in C simulation against ONNX Runtime; plus the support check's
refusals (io_stream normalizes the last axis only). Several ops share one model per build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import accelc
from accelc.hls.extensions.softmax import axis_slices
from accelc.hls.support import fpga_supports

N = helper.make_node


def _model(nodes: list, shape: list, inits: list = ()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "axes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def _conv(c: int, k: list[int], seed: int = 0) -> tuple[onnx.NodeProto, list]:
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(0, 0.7, [c, c, *k]).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.3, [c]).astype(np.float32), "b")
    return N("Conv", ["x", "w", "b"], ["h"], name="conv", kernel_shape=k), [w, b]


def _compare(model: onnx.ModelProto, tmp_path: Path, x: np.ndarray, io_type: str) -> float:
    path = tmp_path / "axes.onnx"
    onnx.save(model, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    art = accelc.compile(path, target="fpga", calibration=x, options={"io_type": io_type},
                         out=tmp_path / "art", self_check="warn")
    return float(np.max(np.abs(art.predict(x).reshape(want.shape) - want)))


def _reasons(model: onnx.ModelProto, io_type: str | None = None) -> list[str]:
    return [f"{u.op} {u.node}: {u.reason}" for u in fpga_supports(ir.from_proto(model), io_type=io_type)]


# ---------------------------------------------------------------- fast: slices and the support check


@pytest.mark.parametrize(("shape", "axis", "want"), [
    ([1, 3, 4, 5], 1, (1, 3, 20)), ([1, 3, 4, 5], 2, (3, 4, 5)), ([1, 3, 4, 5], -1, (12, 5, 1)),
    ([1, 4, 6], -2, (1, 4, 6)), ([1, 10], 1, (1, 10, 1)),
])
def test_axis_slices_follow_row_major_order(shape: list[int], axis: int, want: tuple[int, int, int]) -> None:
    assert axis_slices(shape, axis) == want
    # The same slices numpy normalizes over: moving the axis between outer and inner dims.
    outer, n, inner = want
    x = np.arange(np.prod(shape)).reshape(shape)
    assert np.array_equal(np.moveaxis(x, axis, -1).reshape(-1, n),
                          x.reshape(outer, n, inner).transpose(0, 2, 1).reshape(-1, n))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize(("shape", "axis"), [([1, 3, 4, 5], 1), ([1, 3, 4, 5], 2), ([1, 3, 4, 5], -1),
                                             ([1, 4, 6], 1), ([1, 4, 6], 2), ([1, 7], -1)])
def test_every_non_batch_axis_is_accepted_in_io_parallel(op: str, shape: list[int], axis: int) -> None:
    assert _reasons(_model([N(op, ["x"], ["y"], name="sm", axis=axis)], shape), "parallel") == []


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_batch_axis_and_rank_5_are_refused(op: str) -> None:
    (batch,) = _reasons(_model([N(op, ["x"], ["y"], name="sm", axis=0)], [1, 3, 4]))
    assert batch.startswith(f"{op} sm: axis=0 on a rank-3 input")
    (rank5,) = _reasons(_model([N(op, ["x"], ["y"], name="sm", axis=-1)], [1, 2, 2, 2, 3]))
    assert "rank-5" in rank5


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_io_stream_refuses_all_but_the_last_axis(op: str) -> None:
    conv, inits = _conv(3, [1, 1])
    model = lambda axis: _model([conv, N(op, ["h"], ["y"], name="sm", axis=axis)], [1, 3, 4, 5], inits)  # noqa: E731
    (refusal,) = _reasons(model(1))  # a Conv model streams by default
    assert refusal.startswith(f"{op} sm: axis=1 of a [1,3,4,5] tensor in io_stream")
    assert _reasons(model(1), "parallel") == []
    assert _reasons(model(-1)) == [] and _reasons(model(3), "stream") == []
    # Trailing axes of size 1 keep each slice in one stream word.
    squeezed = _model([N(op, ["x"], ["y"], name="sm", axis=1)], [1, 6, 1, 1])
    assert _reasons(squeezed, "stream") == []


@pytest.mark.parametrize(("shape", "axis"), [([1, 3, 4, 5], 1), ([1, 3, 4, 5], 2), ([1, 3, 4, 5], -1), ([1, 4, 6], 2)])
def test_concat_on_any_non_batch_axis_is_accepted(shape: list[int], axis: int) -> None:
    model = _model([N("Relu", ["x"], ["r"], name="relu"), N("Concat", ["x", "r"], ["y"], name="cat", axis=axis)], shape)
    assert _reasons(model) == []


def test_concat_and_merges_refuse_batch_axis_three_inputs_and_broadcasting() -> None:
    (batch,) = _reasons(_model([N("Concat", ["x", "x"], ["y"], name="cat", axis=0)], [1, 3, 4]))
    assert batch.startswith("Concat cat: axis=0")
    (three,) = _reasons(_model([N("Concat", ["x", "x", "x"], ["y"], name="cat", axis=1)], [1, 3, 4]))
    assert "3 inputs" in three
    ok = _model([N("Relu", ["x"], ["r"], name="relu"), N("Max", ["x", "r"], ["m"], name="mx"),
                 N("Min", ["m", "x"], ["n"], name="mn"), N("Sum", ["n", "r"], ["y"], name="sm")], [1, 3, 4])
    assert _reasons(ok) == []
    c = numpy_helper.from_array(np.ones([4], np.float32), "c")
    (bcast,) = _reasons(_model([N("Max", ["x", "c"], ["y"], name="mx")], [1, 3, 4], [c]))
    assert bcast.startswith("Max mx: operands of shapes")


# ---------------------------------------------------------------- slow: C simulation against ONNX Runtime


@pytest.mark.slow
def test_every_axis_without_layout_ops_in_io_parallel(tmp_path: Path) -> None:
    """Softmax(axis=1) -> LogSoftmax(axis=2) -> Softmax(axis=3), concatenated with Relu(x) on axis 2 — NCHW
    [1,3,4,5] (no Conv, so QONNX keeps the layout; hls4ml's own handler erred by ~0.9 here)."""
    nodes = [N("Softmax", ["x"], ["a"], name="sm1", axis=1), N("LogSoftmax", ["a"], ["b"], name="lsm2", axis=2),
             N("Softmax", ["b"], ["c"], name="sm3", axis=-1), N("Relu", ["x"], ["r"], name="relu"),
             N("Concat", ["c", "r"], ["y"], name="cat", axis=2)]
    x = np.random.default_rng(1).normal(0, 1.5, (8, 3, 4, 5)).astype(np.float32)
    assert _compare(_model(nodes, [1, 3, 4, 5]), tmp_path, x, "parallel") < 0.01


@pytest.mark.slow
@pytest.mark.parametrize(("io_type", "axes"), [("parallel", (1, 2, 1)), ("stream", (-1, 3, 2))])
def test_axes_after_a_conv(tmp_path: Path, io_type: str, axes: tuple[int, int, int]) -> None:
    """Conv -> Softmax -> LogSoftmax, concatenated with Relu(x): QONNX puts the Conv in channels-last and a
    Transpose back before the Softmax. io_stream normalizes the last axis only (the support check says so)."""
    conv, inits = _conv(3, [1, 1])
    sm, lsm, cat = axes
    nodes = [conv, N("Softmax", ["h"], ["a"], name="sm", axis=sm), N("LogSoftmax", ["a"], ["l"], name="lsm", axis=lsm),
             N("Relu", ["x"], ["r"], name="relu"), N("Concat", ["l", "r"], ["y"], name="cat", axis=cat)]
    x = np.random.default_rng(2).normal(0, 1.5, (8, 3, 4, 5)).astype(np.float32)
    assert _compare(_model(nodes, [1, 3, 4, 5], inits), tmp_path, x, io_type) < 0.01
