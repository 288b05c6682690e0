"""Every fpga backend the CLI offers either compiles and emulates end to end, or is refused before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import accelc
from accelc.errors import AccelcError
from accelc.reference import Reference

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    path = tmp_path_factory.mktemp("mlp") / "mlp.onnx"
    torch.onnx.export(net, torch.randn(1, 8), path, opset_version=13, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})
    return path


@pytest.mark.parametrize("backend", ["vitis", "vivado", "quartus", "catapult"])
def test_backend_compiles_and_emulates(mlp: Path, tmp_path: Path, backend: str) -> None:
    art = accelc.compile(mlp, target="fpga", out=tmp_path / backend, options={"backend": backend})
    assert art.manifest["target"]["backend"] == backend
    x = np.random.default_rng(1).standard_normal((16, 8)).astype(np.float32)
    ref = Reference(onnx.load(str(mlp))).run([x])[0]
    assert np.abs(art.predict(x) - ref).max() <= 0.05 * max(1.0, float(np.abs(ref).max()))


def test_oneapi_is_refused_before_any_work(mlp: Path, tmp_path: Path, monkeypatch) -> None:
    import accelc.hls.lower as lower

    def never(*args, **kwargs):
        raise AssertionError("lowering started for a backend accelc cannot emulate")

    monkeypatch.setattr(lower, "lower_to_hls", never)
    with pytest.raises(AccelcError, match="oneapi.*CMake.*use one of: vitis, vivado, quartus, catapult"):
        accelc.compile(mlp, target="fpga", out=tmp_path / "oneapi", options={"backend": "oneapi"})
    assert not (tmp_path / "oneapi").exists()
