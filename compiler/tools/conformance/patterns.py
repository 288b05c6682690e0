"""Multi-op patterns seen in real models, as torch modules exported the way users export them
(torch.onnx.export, TorchScript exporter, opset 13, dynamic batch). Flatten after a conv in NCHW order is
here on purpose: under channels-last, the Flatten -> Dense index permutation is a classic silent bug.
The exporter forms of issue 14 follow: `x.view(-1, k)` and `x.view(x.size(0), -1)` (a Reshape whose target is a
Constant, or a Shape -> Gather -> Unsqueeze -> Concat chain), ReLU6 / Hardtanh (Clip with Constant bounds),
`x.mean((2, 3))` and `x.mean(2)` (ReduceMean), `x / 255` and `(x - mean) / std` at the input, and a model exported
with a fixed batch of 1 (no dynamic axes: the 1 is baked into its Reshape; FIXED_BATCH).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import onnx

from accelc.tools.conformance.case import Case


def _export(name: str, make_module: Callable, shape: tuple[int, ...], dynamic: bool = True
            ) -> Callable[[], onnx.ModelProto]:
    def build() -> onnx.ModelProto:
        import torch

        torch.manual_seed(zlib.crc32(name.encode()))
        module = make_module(torch.nn).eval()
        for m in module.modules():  # non-trivial BN statistics, so folding them is exercised
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)
        buf = io.BytesIO()
        axes = {"x": {0: "N"}, "y": {0: "N"}} if dynamic else None
        torch.onnx.export(module, (torch.zeros(1, *shape),), buf, dynamo=False, opset_version=13,
                          input_names=["x"], output_names=["y"], dynamic_axes=axes)
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


def _module(nn, layers: dict, forward: Callable):
    """A module holding `layers` whose forward is `forward(self, x)`: the exporter forms live in forward."""
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for k, v in layers.items():
                setattr(self, k, v)

        def forward(self, x):
            return forward(self, x)
    return Net()


def _view_flatten(nn):  # x.view(-1, k): Reshape with a Constant target (-1, k)
    return _module(nn, {"conv": nn.Conv2d(2, 4, 3), "fc": nn.Linear(4 * 4 * 4, 5)},
                   lambda m, x: m.fc(nn.functional.relu(m.conv(x)).view(-1, 4 * 4 * 4)))


def _size0_flatten(nn):  # x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    return _module(nn, {"conv": nn.Conv2d(2, 4, 3), "fc": nn.Linear(4 * 4 * 4, 5)},
                   lambda m, x: m.fc(nn.functional.relu(m.conv(x)).view(x.size(0), -1)))


def _mean_head(nn):  # global average pooling written by hand: ReduceMean over (2, 3), keepdims=0
    return _module(nn, {"conv": nn.Conv2d(3, 8, 3), "fc": nn.Linear(8, 5)},
                   lambda m, x: m.fc(nn.functional.relu(m.conv(x)).mean((2, 3))))


def _mean_1d(nn):  # a Conv1d net's head: ReduceMean over axis 2
    return _module(nn, {"conv": nn.Conv1d(3, 6, 3), "fc": nn.Linear(6, 4)},
                   lambda m, x: m.fc(nn.functional.relu(m.conv(x)).mean(2)))


def _div255(nn):  # x / 255 at the input: Div by a Constant node
    return _module(nn, {"conv": nn.Conv2d(1, 4, 3), "fc": nn.Linear(4 * 4 * 4, 5)},
                   lambda m, x: m.fc(nn.functional.relu(m.conv(x / 255)).flatten(1)))


def _normalize(nn):  # (x - mean) / std per channel, with the statistics as plain tensors
    import torch

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # ImageNet's, as torchvision writes them
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return _module(nn, {"conv": nn.Conv2d(3, 4, 3, padding=1)},
                   lambda m, x: nn.functional.relu(m.conv((x - mean) / std)))


def _fixed_batch(nn):  # exported without dynamic axes: x.view(x.size(0), -1) becomes Reshape to (1, -1)
    return _module(nn, {"conv": nn.Conv2d(1, 3, 3), "fc": nn.Linear(3 * 4 * 4, 5)},
                   lambda m, x: m.fc(nn.functional.max_pool2d(nn.functional.relu(m.conv(x)), 2).view(x.size(0), -1)))


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
    # Exporter forms (issue 14): outside the fast slice, the e2e zoo (tests/e2e/test_real_models.py) runs them.
    ("view_minus1_flatten", _view_flatten, (2, 6, 6), False),
    ("view_size0_flatten", _size0_flatten, (2, 6, 6), False),
    ("relu6_hardtanh", lambda nn: nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU6(), nn.Conv2d(6, 4, 1), nn.Hardtanh(-0.5, 0.5)), (3, 6, 6), False),
    ("mean_23_head", _mean_head, (3, 6, 6), False),
    ("conv1d_mean_2", _mean_1d, (3, 10), False),
    ("input_div_255", _div255, (1, 6, 6), False),
    ("input_mean_std", _normalize, (3, 6, 6), False),
    ("linear_batchnorm1d", lambda nn: nn.Sequential(
        nn.Linear(16, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 4)), (16,), False),
    ("fixed_batch_1", _fixed_batch, (1, 10, 10), False),
]
FIXED_BATCH = {"fixed_batch_1"}  # exported with a static batch of 1 (the Case's input shape says 1, not 'N')


def pattern_cases() -> list:
    return [Case(f"pattern_{name}", "pattern:" + name, _export(f"pattern_{name}", make, shape, name not in FIXED_BATCH),
                 ((1 if name in FIXED_BATCH else "N", *shape),), fast) for name, make, shape, fast in PATTERNS]
