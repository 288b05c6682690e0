"""The numpy engine against hls4ml's C simulation: equal bit for bit, checked at every compile, chosen by default.

Small models (the bundled MLP, a conv net) keep these quick; the real models (ResNet-8, DS-CNN, ...) are checked
bit for bit in tests/e2e/test_real_models.py and every operator case in the conformance suite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import accelc
from accelc.errors import AccelcError, EngineMismatchError
from accelc.hls.emulate import load_emulator
from accelc.hls.engine import Engine
from accelc.hls.engine import layers as engine_layers
from accelc.hls.engine.kernels import KERNELS
from accelc.hls.engine.project import Project

ROOT = Path(__file__).resolve().parents[3]
MLP = ROOT / "examples" / "mlp" / "mlp.onnx"
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


def _conv_net(path: Path) -> Path:
    """Conv(3x3, pad 1) -> Relu -> MaxPool(2) -> Conv(1x1, stride 2) -> Add (a residual-style merge) -> Relu."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.4, (6, 3, 3, 3)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.1, 6).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.4, (6, 6, 1, 1)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(rng.normal(0, 0.1, 6).astype(np.float32), "b2")
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[1, 1]),
        helper.make_node("Add", ["c2", "p1"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["y"], name="relu2"),
    ]
    graph = helper.make_graph(nodes, "convnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 4, 4])],
                              [w1, b1, w2, b2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def _same_traces(hls_dir: Path, xs: list[np.ndarray]) -> None:
    outs_e, trace_e = Engine(hls_dir).trace(xs)
    outs_c, trace_c = load_emulator(hls_dir).trace(xs)
    assert trace_e.keys() == trace_c.keys()
    differ = [k for k in trace_c if not np.array_equal(trace_e[k], trace_c[k])]
    assert not differ, f"engine != C simulation at {differ}"
    assert all(np.array_equal(a, b) for a, b in zip(outs_e, outs_c))


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> accelc.Artifact:
    calib = np.random.default_rng(0).standard_normal((64, 1, 28, 28)).astype(np.float32)
    return accelc.compile(str(MLP), target="fpga", calibration=calib, out=tmp_path_factory.mktemp("e") / "mlp")


def test_compile_checks_engine_against_csim_and_predict_uses_the_engine(mlp):
    engine = mlp.manifest["target"]["engine"]
    assert engine["numpy"] == "ok" and engine["checked_against_csim"] is True
    assert engine["cross_check"]["bit_exact"] and engine["cross_check"]["samples"] >= 32
    assert mlp.runner.description.startswith("numpy engine")
    assert accelc.load(mlp.path, engine="csim").runner.description.startswith("hls4ml C simulation")


@pytest.mark.parametrize("scale", [1.0, 40.0, 255.0, 1e-3])
def test_engine_equals_csim_at_every_layer(mlp, scale):
    """N(0,1) rows like the calibration, rows far beyond it (every saturating type hits its limits), raw-pixel
    magnitudes and tiny values: the traces are equal bit for bit at every layer."""
    x = np.random.default_rng(7).standard_normal((24, 1, 28, 28)).astype(np.float32) * np.float32(scale)
    _same_traces(mlp.path / "hls", [x])


def test_accumulators_keep_every_product_fraction_bit(mlp):
    """accelc sizes Dense/Conv accumulators to hold x*w exactly (fraction bits of input + weight): no product is
    rounded into the sum, and the engine computes a layer as one exact matrix product."""
    project = Project(mlp.path / "hls")
    dense = [c for c in project.calls if c.function == "dense"]
    assert dense
    for call in dense:
        x_t, w_t = call.type(call.template[0]), call.config_type("weight_t")
        assert call.config_type("accum_t").frac == x_t.frac + w_t.frac, call.layer


def test_conv_pool_merge_stream_model(tmp_path):
    """io_stream: zero padding, a 3x3 conv, max pooling, a strided 1x1 conv and an Add of two branches."""
    path = _conv_net(tmp_path / "convnet.onnx")
    calib = np.random.default_rng(1).standard_normal((64, 3, 8, 8)).astype(np.float32)
    art = accelc.compile(str(path), target="fpga", calibration=calib, out=tmp_path / "conv")
    assert art.manifest["target"]["io_type"] == "io_stream"
    assert art.manifest["target"]["engine"]["cross_check"]["bit_exact"]
    functions = {c.function for c in Project(art.path / "hls").calls}
    assert {"conv_2d_cl", "pooling2d_cl", "add"} <= functions, functions
    x = np.random.default_rng(2).standard_normal((16, 3, 8, 8)).astype(np.float32) * np.float32(6)
    _same_traces(art.path / "hls", [x])


def test_blanket_precision(tmp_path):
    """A user's blanket type (hls4ml infers the accumulators; accelc widens nothing): still bit-exact."""
    art = accelc.compile(str(MLP), target="fpga", options={"precision": "fixed<16,6>"}, out=tmp_path / "blanket")
    assert art.manifest["target"]["engine"]["cross_check"]["bit_exact"]
    x = np.random.default_rng(3).standard_normal((12, 1, 28, 28)).astype(np.float32) * np.float32(3)
    _same_traces(art.path / "hls", [x])


def test_a_difference_is_a_compile_error_naming_the_first_layer(tmp_path, monkeypatch):
    relu = KERNELS["relu"]

    def off_by_one_lsb(call, xs):
        (y,) = relu(call, xs)
        return [y + engine_layers.out_type(call).lsb]

    monkeypatch.setitem(KERNELS, "relu", off_by_one_lsb)
    with pytest.raises(EngineMismatchError, match=r"first at layer '[^']*[Rr]elu[^']*'.*accelc bug"):
        accelc.compile(str(MLP), target="fpga", out=tmp_path / "broken", force=True)
    assert not (tmp_path / "broken").exists()  # nothing half-written is left behind


def test_engine_numpy_compiles_without_gpp(tmp_path, monkeypatch):
    import accelc.hls.lower as lower

    def no_gpp(*_a, **_k):
        raise AssertionError("engine=numpy must not build the C simulation")

    monkeypatch.setattr(lower, "build_emulator", no_gpp)
    art = accelc.compile(str(MLP), target="fpga", engine="numpy", out=tmp_path / "numpy-only")
    target = art.manifest["target"]
    assert target["emulator"]["built"] is False and target["engine"]["checked_against_csim"] is False
    assert "cross_check" not in target["engine"]
    x = np.random.default_rng(4).standard_normal((8, 1, 28, 28)).astype(np.float32)
    got = art.predict(x)
    monkeypatch.undo()  # the C simulation, asked for later, is built on first use and agrees
    assert np.array_equal(got, accelc.load(art.path, engine="csim").predict(x))


def test_what_the_engine_lacks_runs_in_csim_and_says_why(tmp_path, monkeypatch):
    monkeypatch.delitem(KERNELS, "relu")
    art = accelc.compile(str(MLP), target="fpga", out=tmp_path / "no-relu", force=True)
    engine = art.manifest["target"]["engine"]
    assert engine["numpy"] == "unsupported" and "nnet::relu" in engine["why"], engine
    assert art.runner.description.startswith("hls4ml C simulation")
    with pytest.raises(AccelcError, match="engine 'numpy' cannot run this artifact.*nnet::relu"):
        accelc.load(art.path, engine="numpy").predict(np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(AccelcError, match="engine=numpy: .*nnet::relu"):
        accelc.compile(str(MLP), target="fpga", engine="numpy", out=tmp_path / "no-relu-numpy", force=True)


def test_engine_option_is_checked():
    with pytest.raises(AccelcError, match="engine must be one of auto, numpy, csim"):
        accelc.load(MLP.parent, engine="verilator")
    with pytest.raises(AccelcError, match="fpga target only"):
        accelc.compile(str(MLP), target="cpu", engine="numpy")
