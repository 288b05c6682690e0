"""fpga end to end for elementwise ops: legalize-fpga rewrites + hls4ml (and accelc's Clip/HardSigmoid
extensions) in C simulation, against ONNX Runtime on the source model. Several ops share one model per
build to keep the number of g++ builds small."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import accelc
from accelc.errors import UnsupportedOpError

N = helper.make_node


def _const(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _save(tmp_path: Path, nodes: list, shape: list, inits: list) -> Path:
    graph = helper.make_graph(nodes, "ew", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "ew.onnx"
    onnx.save(model, path)
    return path


def _compare(path: Path, x: np.ndarray, io_type: str) -> tuple[float, accelc.Artifact]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    art = accelc.compile(path, target="fpga", calibration=x, options={"io_type": io_type},
                         out=path.parent / "art", self_check="warn")
    return float(np.max(np.abs(art.predict(x) - want))), art


@pytest.mark.slow
def test_normalisation_and_activations_on_a_feature_map(tmp_path: Path) -> None:
    """(x * k - m) per channel with torch's (1,C,1,1) constants, PRelu per channel, Clip(-1, 3), Elu without
    alpha (hls4ml would use 0.01), HardSigmoid(1/6, 1/2), / 2 — io_parallel, NCHW [1,3,4,5]."""
    rng = np.random.default_rng(0)
    shape = [1, 3, 4, 5]
    nodes = [
        N("Mul", ["x", "k"], ["a"], name="scale"),
        N("Sub", ["a", "m"], ["b"], name="shift"),
        N("PRelu", ["b", "s"], ["c"], name="prelu"),
        N("Clip", ["c", "lo", "hi"], ["d"], name="clip"),
        N("Elu", ["d"], ["e"], name="elu"),
        N("HardSigmoid", ["e"], ["f"], name="hsig", alpha=1 / 6, beta=0.5),
        N("Div", ["f", "two"], ["y"], name="half"),
    ]
    inits = [_const("k", rng.uniform(0.5, 2, (1, 3, 1, 1))), _const("m", rng.uniform(-1, 1, (3, 1, 1))),
             _const("s", [[[0.1]], [[0.5]], [[1.5]]]), _const("lo", -1.0), _const("hi", 3.0), _const("two", 2.0)]
    x = (2 * rng.standard_normal((16, *shape[1:]))).astype(np.float32)
    err, art = _compare(_save(tmp_path, nodes, shape, inits), x, "parallel")
    assert err < 0.01, err  # Elu's lookup table and 16-bit fixed point
    legal = {r["name"]: r["stats"] for r in art.manifest["legalize"]}
    assert legal["prelu"]["decomposed"] == 1 and legal["activation-attrs"]["explicit"] == {"Elu": 1}
    assert legal["arith-constants"]["sub_to_add"] == 1 and legal["arith-constants"]["div_to_mul"] == 1


@pytest.mark.slow
def test_parametrised_activations_stream(tmp_path: Path) -> None:
    """ThresholdedRelu without alpha, Selu, PRelu with one slope, Clip with max only, + per-feature constant —
    io_stream, [1, 8]."""
    rng = np.random.default_rng(1)
    shape = [1, 8]
    nodes = [
        N("Add", ["x", "b"], ["a"], name="bias"),
        N("Selu", ["a"], ["c"], name="selu"),
        N("PRelu", ["c", "s"], ["d"], name="prelu"),
        N("Clip", ["d", "", "hi"], ["e"], name="clip"),
        N("ThresholdedRelu", ["e"], ["y"], name="thr"),
    ]
    inits = [_const("b", rng.uniform(-1, 1, 8)), _const("s", [0.25]), _const("hi", 2.5)]
    x = (2 * rng.standard_normal((16, 8))).astype(np.float32)
    err, _ = _compare(_save(tmp_path, nodes, shape, inits), x, "stream")
    assert err < 0.02, err  # Selu's lookup table


@pytest.mark.parametrize(("node", "inits", "reason"), [
    (N("Div", ["k", "x"], ["y"], name="bad"), [_const("k", np.ones(8))], "constant divided by a tensor"),
    (N("Selu", ["x"], ["y"], name="bad", alpha=2.0), [], "alpha=2.0"),
    (N("Add", ["x", "k"], ["y"], name="bad"), [_const("k", np.ones((2, 8)))], "broadcasts"),
])
def test_what_is_not_exact_is_refused_before_lowering(tmp_path: Path, node, inits: list, reason: str) -> None:
    out = [2, 8] if reason == "broadcasts" else [1, 8]
    graph = helper.make_graph([node], "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(UnsupportedOpError) as info:
        accelc.compile(tmp_path / "bad.onnx", target="fpga", out=tmp_path / "art")
    assert "bad" in str(info.value) and reason in str(info.value) and "fpga" in str(info.value)
