"""The real-model zoo's networks, written the way people write them (PyTorch and Keras 3).

Plain definitions, no side effects at import; Keras is imported inside the Keras builders (after
``KERAS_BACKEND=torch`` is set: TensorFlow is not installed). Each network is a small version of a
model people put on FPGAs (the seed document's LeNet, MobileNetV2, the MLPerf Tiny models), small
enough that its hls4ml C simulation builds in seconds. The forms that exporters turn into awkward
graphs are kept on purpose: ``x.view(-1, k)``, ``x.view(x.size(0), -1)``, ReLU6, ``x.mean((2, 3))``,
``x.mean(2)``, BatchNorm1d after Linear, Keras's NHWC layout.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from examples.models import LeNet

# The seed document's LeNet exactly as written (``x.view(-1, 4*4*50)``, ``F.log_softmax``): the bundled one.
SeedLeNet = LeNet


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: type | None = nn.ReLU):
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([act()] if act else []))


class DepthwiseSeparableNet(nn.Module):
    """A small depthwise-separable CNN (MobileNetV1 style): conv 3x3, then depthwise 3x3 (groups=C) +
    pointwise 1x1, each with BatchNorm and ReLU; max pool, flatten, linear. N x 1 x 16 x 16 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(1, 8, 3)
        self.depthwise = _conv_bn(8, 8, 3, groups=8)
        self.pointwise = _conv_bn(8, 16, 1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.pointwise(self.depthwise(self.stem(x))))
        return self.fc(torch.flatten(x, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, ReLU6, depthwise 3x3, ReLU6, 1x1 project (linear), + input."""

    def __init__(self, channels: int, expand: int = 4) -> None:
        super().__init__()
        hidden = channels * expand
        self.conv = nn.Sequential(
            _conv_bn(channels, hidden, 1, act=nn.ReLU6),
            _conv_bn(hidden, hidden, 3, groups=hidden, act=nn.ReLU6),
            _conv_bn(hidden, channels, 1, act=None),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class MobileNetV2Block(nn.Module):
    """Stem conv (stride 2) + one inverted-residual block + 1x1 head conv, ``x.mean((2, 3))`` global
    pooling written by hand, linear. N x 3 x 16 x 16 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 8, 3, stride=2, act=nn.ReLU6)
        self.block = InvertedResidual(8, expand=4)
        self.head = _conv_bn(8, 32, 1, act=nn.ReLU6)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.block(self.stem(x)))
        return self.fc(x.mean((2, 3)))


class ResidualBlock(nn.Module):
    """ResNet basic block as in MLPerf Tiny's ResNet-8: two 3x3 convs; a strided 1x1 conv shortcut
    where the stride or width changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 3, stride=stride)
        self.conv2 = _conv_bn(cout, cout, 3, act=None)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet8(nn.Module):
    """MLPerf Tiny image classification's ResNet-8 (3 stages, one residual block each, average pool
    8x8, dense), at half its width (8/16/32 filters instead of 16/32/64). N x 3 x 32 x 32 -> 10."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.stem = _conv_bn(3, width, 3)
        self.stages = nn.Sequential(ResidualBlock(width, width, 1), ResidualBlock(width, 2 * width, 2),
                                    ResidualBlock(2 * width, 4 * width, 2))
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(4 * width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stages(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


class DSCNN(nn.Module):
    """MLPerf Tiny keyword spotting's DS-CNN, small: a 10x4 stride-2 conv ('same' padding: 25 x 5 out),
    then depthwise 3x3 + pointwise 1x1 stacks with BatchNorm and ReLU, average pool 25x5, dropout,
    dense to 12 keywords. N x 1 x 49 x 10 (MFCC frames x coefficients) -> 12."""

    def __init__(self, width: int = 16, blocks: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, (10, 4), stride=2, padding=(5, 1)), nn.BatchNorm2d(width),
                                  nn.ReLU(), nn.Dropout(0.2))
        self.blocks = nn.Sequential(*[nn.Sequential(_conv_bn(width, width, 3, groups=width), _conv_bn(width, width, 1))
                                      for _ in range(blocks)])
        self.pool = nn.AvgPool2d((25, 5))
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(width, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.pool(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(x, 1))


class FCAutoencoder(nn.Module):
    """MLPerf Tiny anomaly detection's autoencoder: 640 -> 128 x4 -> 8 -> 128 x4 -> 640, each hidden
    Dense followed by BatchNorm1d and ReLU. A regression model (reconstructs its N x 640 input)."""

    def __init__(self, features: int = 640, hidden: int = 128, bottleneck: int = 8) -> None:
        super().__init__()
        widths = [features, hidden, hidden, hidden, hidden, bottleneck, hidden, hidden, hidden, hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Conv1dNet(nn.Module):
    """A 1-D CNN over a multichannel signal: Conv1d, ReLU, Conv1d, ReLU, ``x.mean(2)``, linear.
    N x 4 x 64 -> 5."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(4, 8, 5)
        self.conv2 = nn.Conv1d(8, 16, 3, stride=2)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(x.mean(2))


class FixedBatchCNN(nn.Module):
    """A small CNN that flattens with ``x.view(x.size(0), -1)``; exported with a batch-1 dummy and no
    dynamic axes, the batch size 1 is baked into the Reshape. N x 1 x 12 x 12 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3)
        self.fc = nn.Linear(6 * 5 * 5, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc(x.view(x.size(0), -1))


def randomize_batchnorm(module: nn.Module, seed: int) -> nn.Module:
    """Seeded non-trivial BatchNorm statistics and affine parameters, so that folding them is tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.6 - 0.3)
    return module


# --- Keras 3 (torch backend) ---------------------------------------------------------------------------------


def import_keras():
    """Keras 3 on the torch backend (TensorFlow is not installed); the backend is fixed at first import."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()} backend; set KERAS_BACKEND=torch")
    return keras


def keras_sequential_cnn(seed: int):
    """The seed's FPGA CNN: Conv2D(32, 3x3, relu) -> MaxPooling2D -> Flatten -> Dense(128, relu) ->
    Dense(10, softmax) on 28 x 28 x 1 (NHWC)."""
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    return keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(),
                             L.Flatten(), L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")],
                            name="seed_cnn")


def keras_functional_cnn(seed: int):
    """A Keras functional model: Conv2D / BatchNormalization / ReLU twice, GlobalAveragePooling2D, Dropout,
    Dense(10, softmax), on 16 x 16 x 3 (NHWC); BatchNormalization statistics set to seeded random values."""
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((16, 16, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(inp)))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, strides=2, padding="same")(x)))
    x = L.Dropout(0.3)(L.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, L.Dense(10, activation="softmax")(x), name="functional_cnn")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.uniform(-0.3, 0.3, n), rng.uniform(-0.5, 0.5, n),
                               rng.uniform(0.5, 2.0, n)])  # gamma, beta, moving mean, moving variance
    return model
