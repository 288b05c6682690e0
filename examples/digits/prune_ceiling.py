"""`python examples/digits/prune_ceiling.py`: per-layer sparsity and digits test accuracy of `--prune S` with the
95 % per-layer ceiling of global magnitude pruning and without it (MAX_LAYER_SPARSITY patched to 1.0: the former
plain global threshold), on the bundled digits CNN and on two digits CNNs with BatchNorm, whose folding rescales
the conv weights (the case where a global threshold empties layers)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

import accelc
import accelc.transforms.compress.magnitude_pruning as magnitude
from accelc.data import load_dataset
from accelc.spec import TensorSpec

ROOT = Path(__file__).resolve().parents[2]
SPEC = [TensorSpec("x", (1, 1, 8, 8), "NCHW")]


def bn_cnn(wide: bool = False) -> nn.Module:
    torch.manual_seed(0)
    if wide:  # padded convs and a wide classifier: its weights are small next to the folded convs'
        net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Flatten(),
                            nn.Linear(32 * 8 * 8, 10))
    else:
        net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3),
                            nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
    x, y = (torch.from_numpy(a) for a in load_dataset("digits", SPEC, "train"))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(30):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[i : i + 64]), y[i : i + 64]).backward()
            opt.step()
    return net.eval()


def main() -> None:
    x_test, y_test = load_dataset("digits", SPEC, "test")
    models = {"examples/digits/digits_cnn.pt": str(ROOT / "examples" / "digits" / "digits_cnn.pt"),
              "digits CNN + BatchNorm": bn_cnn(), "wide digits CNN + BatchNorm": bn_cnn(wide=True)}
    for name, source in models.items():
        with tempfile.TemporaryDirectory() as d:
            base = accelc.compile(source, target="cpu", input_shape=(1, 1, 8, 8), out=f"{d}/float")
            print(f"{name}: float accuracy {np.mean(base.predict(x_test).argmax(1) == y_test):.3f}")
            for sparsity in (0.8, 0.9):
                for ceiling in (1.0, 0.95):
                    magnitude.MAX_LAYER_SPARSITY = ceiling
                    art = accelc.compile(source, target="cpu", input_shape=(1, 1, 8, 8), out=f"{d}/pruned",
                                         passes=[f"prune:sparsity={sparsity}"], force=True, min_agreement=0)
                    layers = art.manifest["passes"][0]["stats"]["layers"]
                    accuracy = float(np.mean(art.predict(x_test).argmax(1) == y_test))
                    print(f"  prune {sparsity}, ceiling {'none' if ceiling == 1.0 else ceiling}: accuracy "
                          f"{accuracy:.3f}; per layer " + " / ".join(f"{v['sparsity']:.3f}" for v in layers.values()))


if __name__ == "__main__":
    main()
