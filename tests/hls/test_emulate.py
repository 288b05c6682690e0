"""accelc.hls.emulate: the hls4ml C simulation built with g++, cached by content hash, run and traced.

One module-scoped fpga compile of a tiny dense model is the only g++ build here; every other check
reuses it (the second build_emulator call, the copied project and the reload are cache hits).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import accelc
from accelc.check.fidelity import verify
from accelc.errors import AccelcError
from accelc.hls.emulate import (
    DEFAULT_OPT_FLAG,
    EMULATOR_META,
    Emulator,
    build_emulator,
    load_emulator,
    project_hash,
)

pytestmark = pytest.mark.slow
ATOL = 0.05


def _source() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
            helper.make_node("Relu", ["h"], ["r"], name="relu1"),
            helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1),
        ],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [
            numpy_helper.from_array((0.5 * rng.standard_normal((8, 6))).astype(np.float32), "w1"),
            numpy_helper.from_array((0.1 * rng.standard_normal(8)).astype(np.float32), "b1"),
            numpy_helper.from_array((0.5 * rng.standard_normal((3, 8))).astype(np.float32), "w2"),
            numpy_helper.from_array((0.1 * rng.standard_normal(3)).astype(np.float32), "b2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.fixture(scope="module")
def art(tmp_path_factory: pytest.TempPathFactory) -> accelc.Artifact:
    root = tmp_path_factory.mktemp("emulate")
    onnx.save(_source(), root / "dense.onnx")
    return accelc.compile(root / "dense.onnx", target="fpga", out=root / "dense-fpga")


@pytest.fixture(scope="module")
def hls_dir(art) -> Path:
    return art.path / "hls"


@pytest.fixture(scope="module")
def emulator(hls_dir: Path) -> Emulator:
    return load_emulator(hls_dir)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((16, 6)).astype(np.float32)


def _reference(x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(_source().SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_emulator_matches_onnxruntime(emulator: Emulator, x: np.ndarray) -> None:
    (y,) = emulator.run([x])
    want = _reference(x)
    assert y.shape == (16, 3)
    assert np.abs(y - want).max() <= ATOL
    assert np.abs(want).max() > 0.5  # the comparison is not trivially between near-zeros


def test_artifact_predict_and_manifest(art, x: np.ndarray) -> None:
    target = art.manifest["target"]
    assert target["name"] == "fpga" and target["io_type"] == "io_parallel"
    assert target["emulator"]["opt_flag"] == DEFAULT_OPT_FLAG
    assert target["emulator"]["key"] == project_hash(art.path / "hls", DEFAULT_OPT_FLAG)
    assert art.manifest["self_check"]["passed"] is True
    y = art.predict(x)
    assert y.shape == (16, 3)
    assert np.abs(y - _reference(x)).max() <= ATOL


@pytest.fixture
def no_gxx(monkeypatch) -> None:
    """A cache hit runs no build: g++ (build_lib.sh) must not be started. Checked by what is not done rather
    than by wall-clock time, which a busy machine stretches."""
    import accelc.hls.emulate as emulate

    def refuse(*args, **kwargs):
        raise AssertionError(f"build_emulator started a build on a cache hit: {args}")

    monkeypatch.setattr(emulate, "subprocess", SimpleNamespace(run=refuse))


def test_second_build_is_cached_without_a_rebuild(hls_dir: Path, art, no_gxx) -> None:
    build = build_emulator(hls_dir)
    assert build.cached is True
    assert build.key == art.manifest["target"]["emulator"]["key"]
    assert build.lib.is_file() and build.lib.suffix == ".so"
    assert (build.lib.parent / "weights").is_dir()


def test_copied_project_has_the_same_hash(hls_dir: Path, tmp_path: Path, no_gxx) -> None:
    copy = tmp_path / "elsewhere" / "hls"
    shutil.copytree(hls_dir, copy)
    key = project_hash(hls_dir, DEFAULT_OPT_FLAG)
    assert project_hash(copy, DEFAULT_OPT_FLAG) == key
    build = build_emulator(copy)
    assert build.cached is True and build.key == key
    # What the emulator is built from changes the hash; test-bench data and the flags' absence do not.
    assert project_hash(copy, "-O3") != key
    for tb in (copy / "tb_data").glob("*"):
        tb.write_text("changed")
    assert project_hash(copy, DEFAULT_OPT_FLAG) == key
    weights = sorted((copy / "firmware" / "weights").glob("*.txt"))
    assert weights
    weights[0].write_text(weights[0].read_text() + " ")
    assert project_hash(copy, DEFAULT_OPT_FLAG) != key


def test_trace_returns_every_traced_layer(emulator: Emulator, x: np.ndarray) -> None:
    layers = emulator.meta["trace"]
    assert layers and {"name", "shape", "class", "onnx_node"} <= set(layers[0])
    outs, traced = emulator.trace([x])
    assert set(traced) == {layer["name"] for layer in layers}
    for layer in layers:
        assert traced[layer["name"]].shape == (16, *layer["shape"])
    np.testing.assert_array_equal(outs[0], emulator.run([x])[0])
    np.testing.assert_array_equal(traced[layers[-1]["name"]].reshape(outs[0].shape), outs[0])
    # the ONNX nodes the layers stand for, each traced once: the canonical nodes, and the MatMuls that
    # legalize-fpga's gemm-to-matmul split off (verify skips those: the graph before legalize has none)
    mapped = [layer["onnx_node"] for layer in layers if layer["onnx_node"]]
    assert sorted(mapped) == ["fc1", "fc1_matmul", "fc2", "fc2_matmul", "relu1"]


def test_verify_reports_per_layer_errors(art, x: np.ndarray) -> None:
    report = verify(art, x, atol=ATOL)
    assert report.passed
    assert [row.onnx_node for row in report.per_layer] == ["fc1", "relu1", "fc2"]
    assert all(row.rel_err < 0.05 for row in report.per_layer)
    assert report.first_jump is None


def test_wrong_input_size_is_refused(emulator: Emulator) -> None:
    with pytest.raises(AccelcError, match="expects 6"):
        emulator.run([np.zeros((2, 5), np.float32)])


def test_meta_file_describes_the_interface(hls_dir: Path) -> None:
    meta = json.loads((hls_dir / EMULATOR_META).read_text())
    assert meta["inputs"] == [{"name": "x", "shape": [6], "size": 6}]
    assert [o["shape"] for o in meta["outputs"]] == [[3]]


def test_emulator_without_its_weights_is_refused(emulator: Emulator, hls_dir: Path, tmp_path: Path) -> None:
    lib = build_emulator(hls_dir).lib
    lonely = tmp_path / lib.name
    shutil.copy(lib, lonely)
    with pytest.raises(AccelcError, match="no weights directory"):
        Emulator(lonely, emulator.meta)


def test_a_corrupted_cached_emulator_is_rebuilt_not_loaded(hls_dir: Path, tmp_path: Path, monkeypatch,
                                                           x: np.ndarray) -> None:
    """A cached library overwritten after its build (disk trouble, a half-copied cache) must not reach ctypes:
    its checksum no longer matches, so the next build rebuilds it. A cache of this test's own, so the library
    the module's emulator has loaded is never touched."""
    monkeypatch.setenv("ACCELC_CACHE_DIR", str(tmp_path / "cache"))
    first = build_emulator(hls_dir)
    assert first.cached is False
    first.lib.write_bytes(b"\x7fELF not a library any more")
    again = build_emulator(hls_dir)
    assert again.cached is False and again.key == first.key
    emulator = load_emulator(hls_dir)
    np.testing.assert_allclose(emulator.run([x])[0], _reference(x), atol=ATOL)
    assert build_emulator(hls_dir).cached is True  # and the rebuilt one is trusted again
