"""Test accuracy of the digits CNN: float (torch) vs cpu artifact vs fpga artifact (hls4ml C simulation).

Run from the repository root after `make install`: `python examples/digits/evaluate.py`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

import accelc

HERE = Path(__file__).resolve().parent


def main() -> None:
    x = np.load(HERE / "digits_test_x.npy")
    y = np.load(HERE / "digits_test_y.npy")
    model = torch.jit.load(str(HERE / "digits_cnn.pt")).eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    print(f"digits test split: {len(x)} images 1x8x8")
    print(f"  float (torch)    accuracy {np.mean(ref.argmax(1) == y):.4f}")
    # The training split calibrates the fpga types (ranges); the test split stays unseen.
    calib = "digits"
    for target in ("cpu", "fpga"):
        start = time.perf_counter()
        art = accelc.compile(HERE / "digits_cnn.pt", target=target, input_shape=(1, 1, 8, 8),
                             out=Path("build") / f"digits-{target}", calibration=calib)
        seconds = time.perf_counter() - start
        out = art.predict(x)
        report = accelc.verify(art, x, labels=y, per_layer=False)
        print(f"  {target:4s} artifact    accuracy {np.mean(out.argmax(1) == y):.4f}  "
              f"(max abs err vs float {report.max_abs_err:.4g}, top-1 agreement {report.top1_agreement:.4f}, "
              f"compile {seconds:.1f} s)")


if __name__ == "__main__":
    main()
