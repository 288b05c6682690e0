"""The range guard: an fpga artifact whose fixed-point types were sized on N(0,1) inputs says so at compile time
(API: a Python warning, like the CLI's line), and `predict` warns about — or with strict=True refuses — inputs its
input type cannot hold, instead of returning saturated numbers without a word. Inputs like ONNX's own backend test
cases (`arange`, values up to 24 here) are the case that went silently wrong."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import accelc
from accelc.errors import AccelcError, AccelcWarning, InputRangeWarning
from accelc.reference import Reference

pytestmark = pytest.mark.slow


def _conv(path: Path) -> Path:
    w = np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 5, 5])], [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.fixture(scope="module")
def art_random(tmp_path_factory):
    d = tmp_path_factory.mktemp("guard")
    with pytest.warns(AccelcWarning, match="no calibration data"):
        art = accelc.compile(_conv(d / "conv.onnx"), target="fpga", out=d / "art")
    return art


def test_ranges_from_random_inputs_are_a_python_warning(art_random) -> None:
    assert art_random.manifest["target"]["precision_source"] == "random"
    assert any("no calibration data" in w for w in art_random.manifest["warnings"])
    lo, hi = art_random.manifest["target"]["input_range"][0]
    assert lo < 0 < hi < 24


def test_inputs_beyond_the_input_type_warn_and_strict_refuses(art_random) -> None:
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)  # ONNX's backend-test input
    with pytest.warns(InputRangeWarning, match=r"of input 'x' are outside .*largest \|value\| 24"):
        art_random.predict(x)
    with pytest.raises(AccelcError, match="outside"):
        art_random.predict(x, strict=True)


def test_inputs_inside_the_range_run_without_a_word(art_random) -> None:
    x = np.random.default_rng(3).standard_normal((4, 1, 5, 5)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputRangeWarning)
        y = art_random.predict(np.clip(x, -1, 1), strict=True)
    ref = Reference(onnx.load(str(art_random.path / "model.onnx"))).run([np.clip(x, -1, 1)])[0]
    assert np.abs(y - ref).max() <= 0.05 * max(1.0, float(np.abs(ref).max()))


def test_calibrated_on_the_real_range_it_is_exact_and_quiet(tmp_path: Path) -> None:
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccelcWarning)
        art = accelc.compile(_conv(tmp_path / "conv.onnx"), target="fpga", out=tmp_path / "art", calibration=x)
        y = art.predict(x, strict=True)
    ref = Reference(onnx.load(str(tmp_path / "conv.onnx"))).run([x])[0]
    assert np.abs(y - ref).max() <= 0.02 * float(np.abs(ref).max())


def test_a_declared_input_range_sizes_the_types_without_data(tmp_path: Path) -> None:
    """--input-range 0,255 (API input_range=): raw pixels run exact and quiet; the kept inputs say where the ranges
    came from; the self-check ran on uniform rows of another seed in that range."""
    pixels = np.random.default_rng(5).integers(0, 256, (8, 1, 5, 5)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccelcWarning)  # no "ranges from N(0,1)" warning: the user declared them
        art = accelc.compile(_conv(tmp_path / "conv.onnx"), target="fpga", out=tmp_path / "art",
                             input_range=(0, 255))
        y = art.predict(pixels, strict=True)
    lo, hi = art.manifest["target"]["input_range"][0]
    assert lo <= 0 and hi >= 255
    assert art.manifest["calibration"] == {"kind": "range", "range": [[0.0, 255.0]], "rows": 256}
    assert "declared input range [0, 255]" in art.manifest["self_check"]["inputs"]
    ref = Reference(onnx.load(str(tmp_path / "conv.onnx"))).run([pixels])[0]
    assert np.abs(y - ref).max() <= 0.01 * float(np.abs(ref).max())
    with pytest.raises(AccelcError, match="input range"):
        accelc.compile(tmp_path / "conv.onnx", target="fpga", out=tmp_path / "bad", input_range="255,0")
