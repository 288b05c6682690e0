"""End to end: hand-written global pooling (`x.mean((2, 3))`, `x.mean(2)` after a Conv1d) and input normalization
(`x / 255.0`, `(x - mean) / std`), as people write them, exported by the real exporters (TorchScript at opset 13:
ReduceMean with its axes as an attribute, a Constant node for 255; dynamo: opset 18+, axes as an input), compiled
for cpu and fpga and compared with torch eager on realistic inputs.

Canonicalization turns the reductions into GlobalAveragePool (+ Flatten) and folds the scaling into the first
Conv where exact; a mean/std shift before a padded Conv stays as per-channel Sub/Div. Four emulator builds.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import accelc

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::FutureWarning")

N = 64
FPGA_ATOL = 0.05
CPU_ATOL = 1e-4


class GapCNN(nn.Module):
    """Two padded 3x3 Convs, a max-pool, then global average pooling written by hand and a Linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.relu(self.c2(x))
        return self.fc(x.mean((2, 3)))


class Conv1dNet(nn.Module):
    """A 1-D CNN: Conv1d, ReLU, Conv1d, ReLU, the mean over time, a Linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(8, 16, 5, padding=2)
        self.c2 = nn.Conv1d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.c2(F.relu(self.c1(x))))
        return self.fc(x.mean(2))


class PixelNet(nn.Module):
    """Raw 0..255 pixels in: `x / 255.0` first, then Conv (padded), ReLU, max-pool, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / 255.0
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        return self.fc(torch.flatten(x, 1))


class NormNet(nn.Module):
    """ImageNet-style `(x - mean) / std` per channel, then a padded Conv (folding is not exact here)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        return self.fc(torch.flatten(x, 1))


def _inputs(kind: str, shape: tuple[int, ...]) -> np.ndarray:
    """Realistic inputs: N(0, 1) features, raw pixels 0..255, or images scaled to [0, 1]."""
    rng = np.random.default_rng(7)
    if kind == "pixels":
        return rng.integers(0, 256, (N, *shape[1:])).astype(np.float32)
    if kind == "unit":
        return rng.uniform(0, 1, (N, *shape[1:])).astype(np.float32)
    return rng.standard_normal((N, *shape[1:])).astype(np.float32)


# name: (model, input shape, input kind, ops the canonical graph must have, ops it must not)
MODELS = {
    "gap_cnn": (GapCNN, (1, 3, 16, 16), "normal", {"GlobalAveragePool", "Flatten"}, {"ReduceMean"}),
    "conv1d_mean": (Conv1dNet, (1, 8, 64), "normal", {"GlobalAveragePool", "Flatten"}, {"ReduceMean"}),
    "pixel_div255": (PixelNet, (1, 1, 14, 14), "pixels", set(), {"Div", "Mul", "Constant"}),
    "norm_padded_conv": (NormNet, (1, 3, 8, 8), "unit", {"Sub", "Div"}, set()),
}


def export(name: str, exporter: str, path: Path) -> tuple[nn.Module, Path]:
    """The seeded model in eval mode, exported with a free batch by the TorchScript (opset 13) or dynamo exporter."""
    cls, shape, *_ = MODELS[name]
    torch.manual_seed(0)
    net = cls().eval()
    x = torch.randn(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=13, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        else:
            batch = torch.export.Dim("batch", min=1, max=1024)
            torch.onnx.export(net, (x,), str(path), dynamo=True, input_names=["x"], output_names=["y"], verbose=False,
                              dynamic_shapes=({0: batch},))
    return net, path


def check(name: str, exporter: str, target: str, tmp_path: Path) -> None:
    _, shape, kind, must, must_not = MODELS[name]
    net, path = export(name, exporter, tmp_path / f"{name}_{exporter}.onnx")
    x = _inputs(kind, shape)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    art = accelc.compile(path, target=target, out=tmp_path / f"{name}-{target}",
                         calibration=x if target == "fpga" else None)
    y = art.predict(x)
    assert y.shape == ref.shape
    err = float(np.max(np.abs(y - ref)))
    assert err < (FPGA_ATOL if target == "fpga" else CPU_ATOL), err
    assert np.mean(y.argmax(1) == ref.argmax(1)) >= 0.98
    ops = {n.op_type for n in onnx.load(str(art.reference_path)).graph.node}
    assert must <= ops and not (must_not & ops), ops


CPU_CASES = [("gap_cnn", "torchscript"), ("gap_cnn", "dynamo"), ("conv1d_mean", "torchscript"),
             ("conv1d_mean", "dynamo"), ("pixel_div255", "torchscript"), ("pixel_div255", "dynamo"),
             ("norm_padded_conv", "torchscript"), ("norm_padded_conv", "dynamo")]
FPGA_CASES = [("gap_cnn", "torchscript"), ("conv1d_mean", "dynamo"), ("pixel_div255", "torchscript"),
              ("norm_padded_conv", "torchscript")]


@pytest.mark.parametrize(("name", "exporter"), CPU_CASES)
def test_cpu_matches_torch(name: str, exporter: str, tmp_path: Path) -> None:
    check(name, exporter, "cpu", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "exporter"), FPGA_CASES)
def test_fpga_matches_torch(name: str, exporter: str, tmp_path: Path) -> None:
    check(name, exporter, "fpga", tmp_path)
