"""Write MLPerf Tiny's ResNet-8 (16/32/64 filters, 3x32x32) and DS-CNN (64 filters, 4 depthwise-separable
blocks, 1x49x10) at their full sizes as TorchScript files, with seeded weights and BatchNorm statistics: the
models `accelc bench` times the numpy engine against the C simulation on.

    python examples/real_models/export_mlperf.py OUT_DIR     # -> OUT_DIR/resnet8.pt, OUT_DIR/dscnn.pt
    accelc bench OUT_DIR/resnet8.pt --input-shape 1,3,32,32 --targets cpu,fpga --batch 64
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.real_models.models import DSCNN, ResNet8, randomize_batchnorm  # noqa: E402

MODELS = {"resnet8": (lambda: ResNet8(width=16), (1, 3, 32, 32)), "dscnn": (lambda: DSCNN(width=64, blocks=4),
                                                                            (1, 1, 49, 10))}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (make, shape) in MODELS.items():
        torch.manual_seed(0)
        model = randomize_batchnorm(make(), 0).eval()
        traced = torch.jit.trace(model, torch.randn(*shape))
        traced.save(str(out / f"{name}.pt"))
        print(f"{out / name}.pt  input {','.join(map(str, shape))}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "build/mlperf"))
