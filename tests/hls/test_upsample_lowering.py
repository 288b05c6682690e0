"""Resize/Upsample (nearest, whole factors), strided ConvTranspose and 1-D MaxPool on fpga: hls4ml's C simulation
against ONNX Runtime.

Three emulator builds cover: torch's Resize form (Constant scales, no roi, asymmetric + floor) and ONNX's default
form (sizes, half_pixel) at the model's output, in io_stream; a 1-D padded, overlapping MaxPool, a 1-D Resize and a
1-D stride-2 ConvTranspose in io_parallel; an opset-9 Upsample reading the model input, then a 2-D stride-2
ConvTranspose (io_stream). Non-repeating resizes are refused by name.
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
from accelc.hls.resize_exact import repeats_pixels


def _model(nodes: list, x_shape: list, inits: list, opset: int = 13) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "upsample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model, full_check=True)
    return model


def _weights(rng: np.random.Generator, name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)


def _const(name: str, values, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=dtype), name)


def _model_2d() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    scales = helper.make_node("Constant", [], ["scales"], name="scales_const",
                              value=_const("scales_value", [1, 1, 2, 3]))
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),  # 4 x 5 x 4
        scales,
        helper.make_node("Resize", ["c1", "", "scales"], ["u1"], name="torch_up", mode="nearest",  # 10 x 12
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Relu", ["u1"], ["r1"], name="relu"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),  # 3 x 10 x 12
        helper.make_node("Resize", ["c2", "", "", "sizes"], ["y"], name="onnx_up", mode="nearest"),  # 20 x 24
    ]
    inits = [_weights(rng, "w1", 4, 3, 3, 3), _weights(rng, "w2", 3, 4, 1, 1),
             _const("sizes", [1, 3, 20, 24], np.int64)]
    return _model(nodes, [1, 3, 5, 4], inits)  # sizes cover the batch axis: a batch-1 model


def _model_1d() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1]),  # 4 x 9
        helper.make_node("MaxPool", ["c1"], ["m"], name="pool", kernel_shape=[3], strides=[2], pads=[1, 1]),  # 5
        helper.make_node("Resize", ["m", "roi", "scales"], ["u"], name="up", mode="nearest",  # 15
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Conv", ["u", "w2"], ["c2"], name="conv2"),
        helper.make_node("ConvTranspose", ["c2", "w3"], ["y"], name="deconv", strides=[2], pads=[1, 1],  # 30
                         output_padding=[1]),
    ]
    inits = [_weights(rng, "w1", 4, 2, 3), _weights(rng, "w2", 2, 4, 1), _weights(rng, "w3", 2, 3, 3),
             _const("roi", []), _const("scales", [1, 1, 3])]
    return _model(nodes, [None, 2, 9], inits)


def _model_upsample9() -> onnx.ModelProto:
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("Upsample", ["x", "scales"], ["u"], name="up", mode="nearest"),  # 3 x 8 x 6
             helper.make_node("Conv", ["u", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("ConvTranspose", ["c", "wt"], ["y"], name="deconv", strides=[2, 2],  # 2 x 16 x 12
                              pads=[1, 1, 1, 1])]
    inits = [_const("scales", [1, 1, 2, 2]), _weights(rng, "w", 2, 3, 3, 3), _weights(rng, "wt", 2, 2, 4, 4)]
    return _model(nodes, [None, 3, 4, 3], inits, opset=9)


@pytest.mark.slow
@pytest.mark.parametrize("build,shape,io_type", [
    (_model_2d, (6, 3, 5, 4), "stream"), (_model_1d, (6, 2, 9), "parallel"), (_model_upsample9, (6, 3, 4, 3), None)])
def test_upsampling_matches_onnxruntime(tmp_path: Path, build, shape: tuple, io_type: str | None) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(build(), path)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([session.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    options = {"io_type": io_type} if io_type else None
    art = accelc.compile(str(path), target="fpga", calibration=x, out=tmp_path / "art", options=options)
    got = np.asarray(art.predict(x)).reshape(want.shape)
    # Fixed point: a few LSB on the Conv outputs; a wrong pixel mapping or swapped H/W errs by O(1).
    assert np.max(np.abs(got - want)) < 0.01 * max(1.0, float(np.max(np.abs(want))))
    assert art.manifest["target"]["io_type"] == ("io_parallel" if io_type == "parallel" else "io_stream")


@pytest.mark.parametrize("transform,nearest,factors", [
    ("asymmetric", "floor", (1, 2, 3, 4)), ("half_pixel", "round_prefer_floor", (1, 2, 3, 4)),
    ("half_pixel", "round_prefer_ceil", (2, 3)), ("pytorch_half_pixel", "round_prefer_floor", (2, 5)),
    ("tf_half_pixel_for_nn", "floor", (2, 3))])
def test_repeating_forms(transform: str, nearest: str, factors: tuple) -> None:
    assert all(repeats_pixels(7, 7 * s, transform, nearest) for s in factors)


@pytest.mark.parametrize("transform,nearest,factor", [
    ("asymmetric", "round_prefer_floor", 3), ("asymmetric", "ceil", 2), ("half_pixel", "floor", 2),
    ("align_corners", "round_prefer_floor", 3), ("tf_half_pixel_for_nn", "round_prefer_ceil", 2)])
def test_non_repeating_forms(transform: str, nearest: str, factor: int) -> None:
    assert not repeats_pixels(7, 7 * factor, transform, nearest)


@pytest.mark.parametrize("attrs,scales,words", [
    ({"mode": "linear"}, [1, 1, 2, 2], ["mode=linear"]),
    ({"coordinate_transformation_mode": "align_corners"}, [1, 1, 3, 3], ["align_corners", "4 -> 12"]),
    ({}, [1, 1, 1.5, 1.5], ["whole multiple"]),
    ({}, [1, 2, 2, 2], ["channel axis"]),
    ({}, [2, 1, 2, 2], ["batch"]),
])
def test_inexact_resizes_are_refused_by_name(tmp_path: Path, attrs: dict, scales: list, words: list) -> None:
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="rs", **{"mode": "nearest", **attrs})
    path = tmp_path / "m.onnx"
    onnx.save(_model([node], [None, 2, 4, 4], [_const("roi", []), _const("scales", scales)]), path)
    with pytest.raises(UnsupportedOpError) as err:
        accelc.compile(str(path), target="fpga", out=tmp_path / "art")
    assert all(w in str(err.value) for w in ["Resize", "rs", *words]), str(err.value)
