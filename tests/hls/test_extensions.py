"""Tests for accelc.hls.extensions: the ONNX LogSoftmax layer for hls4ml.

The slow tests compile hls4ml's C simulation (g++) of a tiny classifier head
(x[1,16] -> MatMul -> Add -> LogSoftmax) and compare it with ONNX Runtime on the source model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hls4ml
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
from qonnx.transformation.gemm_to_matmul import GemmToMatMul
from qonnx.util.cleanup import cleanup_model

from accelc.hls import extensions
from accelc.hls.extensions.logsoftmax import DEFAULT_RESULT_PRECISION, UnsupportedLogSoftmaxError

N_IN, N_OUT, N_SAMPLES, ATOL = 16, 10, 16, 0.05


def make_head(axis: int = -1, in_shape: tuple[int, ...] = (1, N_IN)) -> onnx.ModelProto:
    """x -> MatMul(16x10) -> Add(bias) -> LogSoftmax(axis); seeded weights keep logits O(1..10)."""
    rng = np.random.default_rng(0)
    w = (0.5 * rng.standard_normal((N_IN, N_OUT))).astype(np.float32)
    b = (0.5 * rng.standard_normal(N_OUT)).astype(np.float32)
    out_shape = (*in_shape[:-1], N_OUT)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
            helper.make_node("Add", ["h", "b"], ["z"], name="bias"),
            helper.make_node("LogSoftmax", ["z"], ["y"], name="logsoftmax", axis=axis),
        ],
        "head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def prepare(model: onnx.ModelProto) -> onnx.ModelProto:
    """What hls4ml's ONNX frontend expects: qonnx-cleaned, channels-last, Gemm as MatMul."""
    wrapper = cleanup_model(ModelWrapper(model))
    wrapper = wrapper.transform(ConvertToChannelsLastAndClean())
    wrapper = wrapper.transform(GemmToMatMul())
    return cleanup_model(wrapper).model


def reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime on the source model, one sample at a time (the model's batch is 1)."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])


def convert(
    model: onnx.ModelProto, out_dir: Path, io_type: str, backend: str = "Vitis", trace: bool = False
) -> Any:
    extensions.register()
    prepared = prepare(model)
    config = hls4ml.utils.config.config_from_onnx_model(
        prepared, granularity="name", backend=backend, default_precision="fixed<16,6>"
    )
    if trace:
        for layer_config in config["LayerName"].values():
            layer_config["Trace"] = True
    hls_model = hls4ml.converters.convert_from_onnx_model(
        prepared, output_dir=str(out_dir), io_type=io_type, backend=backend, hls_config=config
    )
    hls_model.compile()
    return hls_model


def logsoftmax_layer(hls_model: Any) -> Any:
    return next(layer for layer in hls_model.get_layers() if layer.class_name == "LogSoftmax")


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((N_SAMPLES, N_IN)).astype(np.float32)


@pytest.fixture(scope="module", params=["io_parallel", "io_stream"])
def compiled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    io_type = request.param
    out_dir = tmp_path_factory.mktemp(f"logsoftmax_{io_type}") / "prj"
    return io_type, convert(make_head(), out_dir, io_type, trace=True)


# ---------------------------------------------------------------- registration and parsing (fast)


def test_register_is_idempotent() -> None:
    extensions.register()
    extensions.register()
    assert extensions.registered_backends() == extensions.SUPPORTED_BACKENDS
    # hls4ml.converters.onnx_to_hls is the converter *function* (it shadows the module): use the re-export.
    assert "LogSoftmax" in hls4ml.converters.get_supported_onnx_layers()


@pytest.mark.parametrize("axis", [-1, 1])
def test_last_axis_is_parsed(axis: int) -> None:
    extensions.register()
    layers, _, _ = hls4ml.converters.parse_onnx_model(prepare(make_head(axis=axis)))
    (layer,) = [layer for layer in layers if layer["class_name"] == "LogSoftmax"]
    assert layer["axis"] == -1


def test_config_proposes_a_log_probability_precision() -> None:
    extensions.register()
    config = hls4ml.utils.config.config_from_onnx_model(
        prepare(make_head()), granularity="name", backend="Vitis", default_precision="fixed<8,3>"
    )
    (layer_config,) = [c for name, c in config["LayerName"].items() if name.startswith("LogSoftmax")]
    assert layer_config["Precision"]["result"] == str(DEFAULT_RESULT_PRECISION)


@pytest.mark.parametrize("axis", [1, -2])
def test_inner_axis_is_parsed_as_strided_slices(axis: int) -> None:
    extensions.register()
    layers, _, _ = hls4ml.converters.parse_onnx_model(prepare(make_head(axis=axis, in_shape=(1, 4, N_IN))))
    (layer,) = [layer for layer in layers if layer["class_name"] == "LogSoftmax"]
    assert (layer["n_slice"], layer["n_inner"], layer["axis"]) == (4, N_OUT, axis)


@pytest.mark.parametrize(("axis", "in_shape"), [(0, (1, N_IN)), (0, (1, 4, N_IN)), (-3, (1, 4, N_IN))])
def test_batch_axis_is_refused_clearly(axis: int, in_shape: tuple[int, ...]) -> None:
    extensions.register()
    prepared = prepare(make_head(axis=axis, in_shape=in_shape))
    with pytest.raises(UnsupportedLogSoftmaxError, match=rf"axis={axis} on a rank-{len(in_shape)} input"):
        hls4ml.converters.parse_onnx_model(prepared)


# ---------------------------------------------------------------- C simulation (slow)


@pytest.mark.slow
def test_matches_onnxruntime(compiled: tuple[str, Any], inputs: np.ndarray) -> None:
    _, hls_model = compiled
    expected = reference(make_head(), inputs)
    got = np.asarray(hls_model.predict(inputs)).reshape(expected.shape)
    assert np.abs(got - expected).max() <= ATOL
    assert expected.min() > -30  # the comparison is inside the default output range


@pytest.mark.slow
def test_trace_includes_logsoftmax(compiled: tuple[str, Any], inputs: np.ndarray) -> None:
    _, hls_model = compiled
    name = logsoftmax_layer(hls_model).name
    _, traces = hls_model.trace(inputs)
    expected = reference(make_head(), inputs)
    assert np.abs(traces[name].reshape(expected.shape) - expected).max() <= ATOL


@pytest.mark.slow
def test_out_of_range_log_probabilities_saturate(compiled: tuple[str, Any], inputs: np.ndarray) -> None:
    """Logits far apart give log-probabilities below -32: they clip there instead of wrapping around."""
    _, hls_model = compiled
    wide = 8.0 * inputs  # still inside the fixed<16,6> input range; the logits are not
    expected = reference(make_head(), wide)
    got = np.asarray(hls_model.predict(wide)).reshape(expected.shape)
    assert expected.min() < -40
    lowest = -(2.0 ** (DEFAULT_RESULT_PRECISION.integer - 1))
    assert got.max() <= 0 and got.min() >= lowest
    in_range = expected > lowest + 1
    assert np.abs(got[in_range] - expected[in_range]).max() <= ATOL


@pytest.mark.slow
def test_vivado_backend(tmp_path: Path, inputs: np.ndarray) -> None:
    hls_model = convert(make_head(), tmp_path / "prj", "io_parallel", backend="Vivado")
    expected = reference(make_head(), inputs)
    got = np.asarray(hls_model.predict(inputs)).reshape(expected.shape)
    assert np.abs(got - expected).max() <= ATOL
