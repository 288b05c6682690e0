"""Frontend: every supported source imports to an onnx-ir model that computes what the source computes,
and every unusable source fails with one clear ModelLoadError line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from accelc.errors import ModelLoadError
from accelc.frontend import load, parse_shape
from accelc.spec import TensorSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.* in the tests themselves


class MLP(torch.nn.Module):  # top level, so that a pickled instance can be unpickled
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(16, 12), torch.nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class TinyConv(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3)
        self.fc = torch.nn.Linear(3 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def _run(loaded, x: np.ndarray) -> np.ndarray:
    proto = ir.serde.serialize_model(loaded.model)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {loaded.inputs[0].name: x})[0]


def _check_matches(loaded, model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape)
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    np.testing.assert_allclose(_run(loaded, x.numpy()), expected, atol=1e-5)


def _error(*args, **kwargs) -> str:
    with pytest.raises(ModelLoadError) as info:
        load(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def _onnx_file(path, dims: list, opset: int = 13, weights_as_inputs: bool = False):
    """x[dims] @ W(4x3) + b as an ONNX file; a dim may be an int, a name or None (unknown)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.arange(12, dtype=np.float32).tolist())
    b = helper.make_tensor("b", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)]
    if weights_as_inputs:
        inputs += [helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3])]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, b],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def test_onnx_static_shape(tmp_path):
    loaded = load(_onnx_file(tmp_path / "m.onnx", [2, 4]))
    assert loaded.kind == "onnx" and loaded.inputs[0] == TensorSpec("x", (2, 4), "float32", "NC")
    assert loaded.outputs[0].shape == (2, 3)
    assert len(loaded.sha256) == 64 and loaded.source.endswith("m.onnx")
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(_run(loaded, x), x @ np.arange(12, dtype=np.float32).reshape(4, 3) + [1, 2, 3])


def test_onnx_symbolic_batch_is_reported_as_one_and_stays_symbolic(tmp_path):
    loaded = load(_onnx_file(tmp_path / "m.onnx", ["N", 4]))
    assert loaded.inputs[0].shape == (1, 4) and loaded.outputs[0].shape == (1, 3)
    assert isinstance(loaded.model.graph.inputs[0].shape[0], ir.SymbolicDim)
    assert _run(loaded, np.ones((5, 4), np.float32)).shape == (5, 3)  # any batch still runs


def test_onnx_unknown_dim_needs_input_shape(tmp_path):
    path = _onnx_file(tmp_path / "m.onnx", ["N", None])
    assert "--input-shape" in _error(path) and "[1]" in _error(path)
    loaded = load(path, input_shape=(2, 4))
    assert loaded.inputs[0].shape == (2, 4) and loaded.model.graph.inputs[0].shape[1] == 4
    assert "has shape" in _error(_onnx_file(tmp_path / "s.onnx", [1, 4]), input_shape=(1, 5))


def test_onnx_initializers_listed_as_inputs_are_not_inputs(tmp_path):
    loaded = load(_onnx_file(tmp_path / "m.onnx", [1, 4], weights_as_inputs=True))
    assert [s.name for s in loaded.inputs] == ["x"] and [v.name for v in loaded.model.graph.inputs] == ["x"]


def test_onnx_old_opset_is_converted_up(tmp_path):
    loaded = load(_onnx_file(tmp_path / "m.onnx", [1, 4], opset=9))
    assert loaded.model.opset_imports[""] >= 13


def test_onnx_load_does_not_import_torch(tmp_path):
    path = _onnx_file(tmp_path / "m.onnx", [1, 4])
    code = (
        "import sys, accelc.frontend as f\n"
        "if 'torch' in sys.modules: sys.exit(3)\n"
        f"f.load({str(path)!r})\n"
        "sys.exit(4 if 'torch' in sys.modules else 0)"
    )
    rc = subprocess.run([sys.executable, "-c", code]).returncode
    if rc == 3:
        pytest.skip("importing the accelc package already imports torch (not the frontend's doing)")
    assert rc == 0, "loading an .onnx file imported torch"


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_matches_torch(tmp_path, how):
    model = TinyConv().eval()
    scripted = torch.jit.script(model) if how == "script" else torch.jit.trace(model, torch.randn(1, 1, 8, 8))
    scripted.save(tmp_path / "m.pt")
    loaded = load(tmp_path / "m.pt", input_shape=(1, 1, 8, 8))
    assert loaded.kind == "torchscript" and loaded.inputs[0].shape == (1, 1, 8, 8)
    assert loaded.inputs[0].layout == "NCHW" and loaded.outputs[0].shape == (1, 5)
    assert loaded.model.opset_imports[""] >= 13
    _check_matches(loaded, model, (1, 1, 8, 8))
    _check_matches(loaded, model, (3, 1, 8, 8))  # the batch axis is dynamic


def test_torch_export_matches_torch(tmp_path):
    model = MLP().eval()
    torch.export.save(torch.export.export(model, (torch.randn(1, 16),)), tmp_path / "m.pt2")
    loaded = load(tmp_path / "m.pt2")  # the shape comes from the program's example inputs
    assert loaded.kind == "torch.export" and loaded.inputs[0].shape == (1, 16)
    assert loaded.model.opset_imports[""] == 13  # a static program is traced to the TorchScript exporter
    _check_matches(loaded, model, (1, 16))
    assert "exported for input shape [(1, 16)]" in _error(tmp_path / "m.pt2", input_shape=(2, 16))


def test_torch_export_with_dynamic_batch_goes_through_dynamo(tmp_path):
    model = TinyConv().eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (torch.randn(4, 1, 8, 8),), dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp_path / "d.pt2")
    loaded = load(tmp_path / "d.pt2")
    assert loaded.inputs[0].shape == (1, 1, 8, 8) and loaded.model.opset_imports[""] >= 13
    assert isinstance(loaded.model.graph.inputs[0].shape[0], ir.SymbolicDim)
    _check_matches(loaded, model, (7, 1, 8, 8))


def test_nn_module_matches_torch_and_keeps_training_mode():
    model = TinyConv().train()
    loaded = load(model, input_shape=[1, 1, 8, 8])
    assert loaded.kind == "nn.Module" and loaded.source == "<nn.Module TinyConv>" and len(loaded.sha256) == 64
    assert model.training
    _check_matches(loaded, model, (2, 1, 8, 8))


def test_pickled_module_needs_trust(tmp_path):
    model = MLP()
    torch.save(model, tmp_path / "m.pth")
    assert "--trust-pickle" in _error(tmp_path / "m.pth", input_shape=(1, 16))
    loaded = load(tmp_path / "m.pth", input_shape=(1, 16), trust_pickle=True)
    assert loaded.kind == "pickled nn.Module"
    _check_matches(loaded, model, (1, 16))


@pytest.mark.parametrize("wrap", [lambda sd: sd, lambda sd: {"state_dict": sd, "epoch": 3}])
def test_state_dict_is_weights_only(tmp_path, wrap):
    torch.save(wrap(MLP().state_dict()), tmp_path / "w.pt")
    assert "weights only" in _error(tmp_path / "w.pt", input_shape=(1, 16))


def test_corrupt_files(tmp_path):
    scripted = tmp_path / "m.pt"
    torch.jit.script(MLP()).save(scripted)
    data = scripted.read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    assert "not a readable PyTorch archive" in _error(tmp_path / "half.pt", input_shape=(1, 16))
    (tmp_path / "junk.pt").write_bytes(np.random.default_rng(0).bytes(500))
    assert "not a readable PyTorch archive" in _error(tmp_path / "junk.pt", input_shape=(1, 16))
    (tmp_path / "junk.onnx").write_bytes(np.random.default_rng(1).bytes(500))
    assert "not a valid ONNX model" in _error(tmp_path / "junk.onnx")


def test_wrong_extension_missing_file_and_missing_shape(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"x")  # (.h5: a legacy Keras file, test_frontend_keras)
    assert "unsupported model file 'm.tflite'" in _error(tmp_path / "m.tflite")
    assert "no such file" in _error(tmp_path / "absent.onnx")
    torch.jit.script(MLP()).save(tmp_path / "m.pt")
    assert "--input-shape" in _error(tmp_path / "m.pt")
    assert "fails on input shape" in _error(tmp_path / "m.pt", input_shape=(1, 3))


class FFT(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft(x).real


def test_exporter_failure_is_one_line_without_an_ir_dump(capfd):
    assert "torch.onnx cannot export the nn.Module model" in _error(FFT(), input_shape=(1, 4))
    out, err = capfd.readouterr()
    assert "graph" not in out + err  # torch 2.13 dumps the TorchScript IR to stdout unless told not to


def test_parse_shape():
    assert parse_shape("1,1,28,28") == (1, 1, 28, 28)
    assert parse_shape(" 4, 16 ") == parse_shape("(4,16)") == parse_shape("4x16") == (4, 16)
    for bad in ["", "1,,2", "a,b", "1,-3", "0"]:
        with pytest.raises(ModelLoadError) as info:
            parse_shape(bad)
        assert "\n" not in str(info.value)
