"""Multi-op patterns seen in real models, as torch modules exported the way users export them
(torch.onnx.export, TorchScript exporter, opset 13, dynamic batch). Flatten after a conv in NCHW order is
here on purpose: under channels-last, the Flatten -> Dense index permutation is a classic silent bug.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import onnx

from accelc.tools.conformance.case import Case


def _export(name: str, make_module: Callable, shape: tuple[int, ...]) -> Callable[[], onnx.ModelProto]:
    def build() -> onnx.ModelProto:
        import torch

        torch.manual_seed(zlib.crc32(name.encode()))
        module = make_module(torch.nn).eval()
        for m in module.modules():  # non-trivial BN statistics, so folding them is exercised
            if isinstance(m, torch.nn.BatchNorm2d):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)
        buf = io.BytesIO()
        torch.onnx.export(module, (torch.zeros(1, *shape),), buf, dynamo=False, opset_version=13,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        model = onnx.load_from_string(buf.getvalue())
        onnx.checker.check_model(model, full_check=True)
        return model
    return build


def _residual(nn):
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(4, 4, 3, padding=1)
            self.b = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return nn.functional.relu(x + self.b(nn.functional.relu(self.a(x))))
    return Residual()


def _concat(nn):
    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=1)
            self.b = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            return nn.functional.relu(__import__("torch").cat([self.a(x), self.b(x)], dim=1))
    return Branches()


PATTERNS = [  # name, module factory (given torch.nn), input shape without batch, fast
    ("conv_bn_relu", lambda nn: nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU()),
     (3, 8, 8), True),
    ("residual_add", _residual, (4, 6, 6), True),
    ("depthwise_separable", lambda nn: nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 8, 1), nn.ReLU()),
     (4, 8, 8), True),
    ("global_pool_head", lambda nn: nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)), (3, 8, 8), True),
    ("channel_concat", _concat, (3, 6, 6), True),
    ("flatten_after_conv", lambda nn: nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 5, 6)), (3, 6, 7), True),
    ("lenet_like", lambda nn: nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 10), nn.Softmax(dim=1)), (1, 14, 14), False),
    ("mlp_sigmoid_tanh", lambda nn: nn.Sequential(
        nn.Linear(12, 16), nn.Sigmoid(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 4)), (12,), False),
]


def pattern_cases() -> list:
    return [Case(f"pattern_{name}", "pattern:" + name, _export(f"pattern_{name}", make, shape), (("N", *shape),),
                 fast) for name, make, shape, fast in PATTERNS]
