"""Spatial ops on fpga end to end: legalize-fpga's rewrites, then hls4ml's C simulation, against ONNX Runtime.

Each model strings several rewritten ops together to keep the number of emulator builds small: auto_pad, a
zero Pad folded into a Conv, a dilated Conv, a unit-stride ConvTranspose, ceil_mode MaxPool, AveragePool with
count_include_pad and GlobalAveragePool, in 2-D and 1-D. What cannot be lowered exactly is refused by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import accelc
from accelc.errors import UnsupportedOpError


def _model(nodes: list, x_shape: list, y_shape: list, inits: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "spatial", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _weights(rng: np.random.Generator, name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)


def _model_2d() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    pads = numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 0, 1], dtype=np.int64), "pads")
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
        helper.make_node("Conv", ["p", "w1"], ["c1"], name="same", auto_pad="SAME_UPPER"),  # 9x9
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="dilated", dilations=[2, 2], pads=[1, 1, 1, 1]),  # 7x7
        helper.make_node("ConvTranspose", ["c2", "w3"], ["c3"], name="deconv", pads=[1, 1, 0, 0]),  # 8x8
        helper.make_node("MaxPool", ["c3"], ["m"], name="pool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("AveragePool", ["m"], ["a"], name="avg", kernel_shape=[2, 2], strides=[2, 2]),  # 2x2
        helper.make_node("GlobalAveragePool", ["a"], ["y"], name="gap"),
    ]
    inits = [pads, _weights(rng, "w1", 4, 3, 3, 3), _weights(rng, "w2", 4, 4, 3, 3), _weights(rng, "w3", 4, 5, 3, 3)]
    return _model(nodes, [None, 3, 8, 8], [None, 5, 1, 1], inits)


def _model_1d() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="same", auto_pad="SAME_LOWER", strides=[2]),  # 8
        helper.make_node("AveragePool", ["c1"], ["a"], name="avg", kernel_shape=[3], pads=[1, 1],
                         count_include_pad=1),
        helper.make_node("Conv", ["a", "w2"], ["c2"], name="dilated", dilations=[3]),  # 2
        helper.make_node("GlobalAveragePool", ["c2"], ["y"], name="gap"),
    ]
    return _model(nodes, [None, 2, 16], [None, 3, 1], [_weights(rng, "w1", 4, 2, 4), _weights(rng, "w2", 3, 4, 3)])


@pytest.mark.slow
@pytest.mark.parametrize("build,shape", [(_model_2d, (6, 3, 8, 8)), (_model_1d, (6, 2, 16))])
def test_rewritten_spatial_ops_match_onnxruntime(tmp_path: Path, build, shape: tuple) -> None:
    model = build()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    art = accelc.compile(str(path), target="fpga", calibration=x, out=tmp_path / "art")
    got = np.asarray(art.predict(x)).reshape(want.shape)
    # 16-bit fixed point: a few LSB of error on the accumulated values, nothing like a wrong window.
    assert np.max(np.abs(got - want)) < 0.02 * max(1.0, float(np.max(np.abs(want))))
    rewritten = {r["name"] for r in art.manifest["legalize"]}
    assert {"explicit-pads", "dilated-conv", "global-pool", "avgpool-to-conv"} <= rewritten


@pytest.mark.parametrize("node,y_shape,inits,words", [
    # Stride 3 > kernel 2: zero insertion would leave more zeros after the last pixel than the end pads take off.
    (helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[3, 3]), [None, 2, 11, 11],
     [numpy_helper.from_array(np.ones((2, 2, 2, 2), np.float32), "w")], ["ConvTranspose", "up", "strides=[3, 3]"]),
    (helper.make_node("AveragePool", ["x"], ["y"], name="avg", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
     [None, 2, 4, 4], [], ["AveragePool", "avg", "count_include_pad=0"]),
    (helper.make_node("Pad", ["x", "p"], ["y"], name="pad", mode="reflect"), [None, 2, 6, 6],
     [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "p")], ["Pad", "pad", "mode=reflect"]),
])
def test_inexact_forms_are_refused_by_name(tmp_path: Path, node, y_shape: list, inits: list, words: list) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_model([node], [None, 2, 4, 4], y_shape, inits), path)
    with pytest.raises(UnsupportedOpError) as err:
        accelc.compile(str(path), target="fpga", out=tmp_path / "art")
    assert all(w in str(err.value) for w in words)
