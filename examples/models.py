"""The example networks bundled with accelc, and the digits data split.

Plain ``nn.Module`` definitions (no side effects at import) shared by the scripts that write the
example model files and by the tests that check them. Every layer is one the compiler's targets
support directly (no grouped or dilated convolutions).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """784-128-10 multilayer perceptron; takes N x 1 x 28 x 28 or N x 784."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(784, 128)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


class LeNet(nn.Module):
    """LeNet-5 as in the Caffe MNIST example (20/50 filters, 500 hidden); N x 1 x 28 x 28 in.

    The output is log-probabilities (log_softmax over the 10 classes). The forward is the seed document's, as
    written: `x.view(-1, 4*4*50)` before fc1 (the exporter writes it as a Reshape to a Constant [-1, 800]).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, kernel_size=5)
        self.conv2 = nn.Conv2d(20, 50, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))  # 20 x 12 x 12
        x = self.pool(F.relu(self.conv2(x)))  # 50 x 4 x 4
        x = x.view(-1, 4 * 4 * 50)  # 800
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


class DigitsCNN(nn.Module):
    """Small CNN for scikit-learn's 8x8 digits; N x 1 x 8 x 8 in, 10 logits out.

    BatchNorm and Dropout are there on purpose: canonicalization must fold the one and drop the
    other, so this model exercises both.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8 x 4 x 4
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 16 x 2 x 2
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(32, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)`` from scikit-learn's ``load_digits``.

    Images are scaled to [0, 1] (pixel values are 0..16) as float32 N x 1 x 8 x 8; labels are
    int64. The split is stratified, 75/25, with ``random_state=seed``.
    """
    # Imported here so that importing the models does not pull in scikit-learn.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return x_train, y_train, x_test, y_test
