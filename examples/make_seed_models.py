"""Write the seed example models: random-weight MLP and LeNet, seeded so the files are reproducible.

Run from anywhere: ``python examples/make_seed_models.py``. It writes

* ``examples/mlp/mlp.pt``      TorchScript MLP (784-128-10)
* ``examples/mlp/mlp.onnx``    the same MLP as ONNX (opset 13, dynamic batch)
* ``examples/lenet/lenet.pt``  TorchScript LeNet (1 x 28 x 28 in, log-probabilities out)

The weights are untrained: these models exercise the compiler, not accuracy (the digits example
is the trained one). Running it again leaves the files as they are.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

EXAMPLES = Path(__file__).resolve().parent
# Make `examples` importable when this file is run as a script from any directory.
if str(EXAMPLES.parent) not in sys.path:
    sys.path.insert(0, str(EXAMPLES.parent))

from examples.models import MLP, LeNet  # noqa: E402
from examples.saving import export_onnx, report, save_torchscript  # noqa: E402

SEED = 0
INPUT_SHAPE = (1, 1, 28, 28)
MLP_PT = EXAMPLES / "mlp" / "mlp.pt"
MLP_ONNX = EXAMPLES / "mlp" / "mlp.onnx"
LENET_PT = EXAMPLES / "lenet" / "lenet.pt"


def build_seed_models() -> dict[str, nn.Module]:
    """Return ``{"mlp": MLP, "lenet": LeNet}`` in eval mode, with the same weights on every call."""
    # One seed, then the models in a fixed order: the weights depend on nothing outside this function.
    torch.manual_seed(SEED)
    return {"mlp": MLP().eval(), "lenet": LeNet().eval()}


def main() -> None:
    models = build_seed_models()
    example = torch.zeros(INPUT_SHAPE)
    root = EXAMPLES.parent
    report(MLP_PT, save_torchscript(models["mlp"], MLP_PT, example), root)
    report(MLP_ONNX, export_onnx(models["mlp"], MLP_ONNX, example), root)
    report(LENET_PT, save_torchscript(models["lenet"], LENET_PT, example), root)


if __name__ == "__main__":
    main()
