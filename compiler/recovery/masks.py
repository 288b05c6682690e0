"""What fine-tuning must not undo: pruned zeros, removed channels (shapes) and integer bit widths.

Shapes and bit widths hold by construction (the graph is trained as it is, quantized weights through their own
scale and range); zeros are held by masks: gradients of pruned entries are zeroed before each optimizer step and
the entries are zeroed again after it (Adam's momentum would otherwise move them). `summary` measures all three on
the weights as the graph stores them, so before/after can be compared exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from accelc.recovery.torch_graph import GraphModule


def sparsity_masks(module: GraphModule, quantized_zeros: bool = False) -> dict[str, torch.Tensor]:
    """Weight name -> 1/0 mask of the entries that may train. A float weight's exact zeros are pruned entries
    (training never lands on 0.0 by chance); a quantized weight's zeros are also what small weights round to, so
    they are held only when `quantized_zeros` says the graph was pruned before quantization."""
    masks = {}
    for name in module.weights:
        if name in module.quant and not quantized_zeros:
            continue
        zero = torch.from_numpy(module.stored(name) == 0) if name in module.quant else module.param(name) == 0
        if bool(zero.any()):
            masks[name] = (~zero).to(torch.float32)
    return masks


def mask_gradients(module: GraphModule, masks: dict[str, torch.Tensor]) -> None:
    for name, mask in masks.items():
        p = module.param(name)
        if p.grad is not None:
            p.grad.mul_(mask.to(p.grad.device))


@torch.no_grad()
def apply_masks(module: GraphModule, masks: dict[str, torch.Tensor]) -> None:
    for name, mask in masks.items():
        p = module.param(name)
        p.mul_(mask.to(p.device))


def summary(module: GraphModule) -> dict:
    """Per weight: shape, zeros and bits as stored (float: 32); overall sparsity of the weights."""
    layers, zeros, total = {}, 0, 0
    for name in module.weights:
        w = module.stored(name)
        info = module.quant.get(name)
        z = int(np.count_nonzero(w == 0))
        layers[name] = {"shape": list(w.shape), "zeros": z, "dtype": str(w.dtype),
                        "bits": info.bits if info is not None else 32}
        zeros, total = zeros + z, total + w.size
    return {"sparsity": zeros / total if total else 0.0, "layers": layers}


def preserved(before: dict, after: dict, masks: dict[str, torch.Tensor]) -> list[str]:
    """What fine-tuning broke, in words (empty when shapes and bit widths are equal and held zeros stayed zero)."""
    problems = []
    for name, b in before["layers"].items():
        a = after["layers"][name]
        if a["shape"] != b["shape"] or a["bits"] != b["bits"] or a["dtype"] != b["dtype"]:
            problems.append(f"{name}: {b['shape']}/{b['bits']} bits became {a['shape']}/{a['bits']} bits")
        if name in masks and a["zeros"] < int((masks[name] == 0).sum()):
            problems.append(f"{name}: {int((masks[name] == 0).sum())} pruned zeros, {a['zeros']} after")
    return problems
