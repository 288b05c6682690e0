"""Train DigitsCNN on scikit-learn's 8x8 digits: the trained example, small enough for HLS.

Run from anywhere: ``python examples/digits/train_digits.py``. Seeded and deterministic (a few
seconds on 2 CPU cores); it prints the test accuracy and writes, next to this file,

* ``digits_cnn.pt``       TorchScript DigitsCNN in eval mode (1 x 8 x 8 in, 10 logits out)
* ``digits_test_x.npy``   the held-out test images, float32 N x 1 x 8 x 8 in [0, 1]
* ``digits_test_y.npy``   their labels, int64 N

Files whose content would not change are left untouched.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# Make `examples` importable when this file is run as a script from any directory.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.models import DigitsCNN, digits_split  # noqa: E402
from examples.saving import report, save_torchscript  # noqa: E402

SEED = 0
EPOCHS = 30
BATCH = 32
LR = 3e-3
MODEL_PT = HERE / "digits_cnn.pt"
TEST_X = HERE / "digits_test_x.npy"
TEST_Y = HERE / "digits_test_y.npy"


def train(x: np.ndarray, y: np.ndarray, epochs: int = EPOCHS, seed: int = SEED) -> DigitsCNN:
    """Train a fresh DigitsCNN with Adam on ``(x, y)``; return it in eval mode."""
    torch.manual_seed(seed)
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    # A dedicated generator: the shuffling order depends only on the seed.
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(BATCH):
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    return model.eval()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``."""
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((pred == y).mean())


def save_npy(path: Path, array: np.ndarray) -> bool:
    """Save ``array`` at ``path`` unless an identical array is already there; True if written."""
    if path.exists():
        old = np.load(path)
        if old.dtype == array.dtype and np.array_equal(old, array):
            return False
    np.save(path, array)
    return True


def main() -> None:
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    x_train, y_train, x_test, y_test = digits_split(SEED)
    start = time.perf_counter()
    model = train(x_train, y_train)
    seconds = time.perf_counter() - start
    acc = accuracy(model, x_test, y_test)
    print(f"trained DigitsCNN on {len(x_train)} images in {seconds:.1f} s")
    print(f"test accuracy: {acc:.4f} ({len(x_test)} images)")
    report(MODEL_PT, save_torchscript(model, MODEL_PT, torch.from_numpy(x_test[:1])), ROOT)
    report(TEST_X, save_npy(TEST_X, x_test), ROOT)
    report(TEST_Y, save_npy(TEST_Y, y_test), ROOT)


if __name__ == "__main__":
    main()
