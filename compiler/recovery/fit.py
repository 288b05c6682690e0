"""Training one graph: translate it to torch exactly (checked), train it with its compression kept (masks),
write the trained weights back. Used in this process (accelc.finetune) and by each DDP rank (distributed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from accelc.errors import AccelcError

if TYPE_CHECKING:  # torch is imported only once there is something to train
    from accelc.recovery.training import TrainOptions, World

EXACT_TOL = 1e-5  # the torch translation must reproduce the graph's outputs to this (x output scale, if > 1)
EXACT_SAMPLES = 64


@dataclass
class FinetuneResult:
    """The fine-tuned graph and what it took; `artifact` is set when it was re-lowered."""

    model: onnx.ModelProto
    history: list[dict]
    seconds: float
    best_epoch: int
    stopped_early: bool
    steps: int
    conversion_error: float
    compression: dict
    options: dict
    nproc: int = 1
    rank_weight_max_diff: float | None = None
    artifact: Any = None
    notes: list[str] = field(default_factory=list)

    def stats(self) -> dict:
        """What the manifest keeps about the fine-tuning (the `recover` record)."""
        last = self.history[-1] if self.history else {}
        best = next((h for h in self.history if h["epoch"] == self.best_epoch), last)
        b, a = self.compression["before"], self.compression["after"]
        stats = {"options": self.options, "nproc": self.nproc, "seconds": round(self.seconds, 3),
                 "epochs_run": len(self.history), "best_epoch": self.best_epoch, "stopped_early": self.stopped_early,
                 "optimizer_steps": self.steps, "conversion_max_abs_err": self.conversion_error,
                 "sparsity": {"before": b["sparsity"], "after": a["sparsity"]},
                 "bits": {k: v["bits"] for k, v in a["layers"].items()},
                 "shapes": {k: v["shape"] for k, v in a["layers"].items()},
                 "best": {k: v for k, v in best.items() if k != "epoch"}, "history": self.history}
        if self.rank_weight_max_diff is not None:
            stats["rank_weight_max_diff"] = self.rank_weight_max_diff
        agree = f", val agreement {best['val_agreement']:.3f}" if "val_agreement" in best else ""
        stats["summary"] = (f"fine-tuned {len(self.history)} epoch(s) ({self.steps} steps, {self.seconds:.1f} s, "
                            f"{self.nproc} process(es)), best epoch {self.best_epoch}{agree}; sparsity "
                            f"{b['sparsity']:.1%} -> {a['sparsity']:.1%}, shapes and bit widths unchanged")
        return stats


# -- the core: one process (or one rank) ------------------------------------------------------------------------------


def fit(student: onnx.ModelProto, x: np.ndarray, teacher: np.ndarray, labels: np.ndarray | None, opts: TrainOptions,
        quantized_zeros: bool = False, world: World | None = None) -> FinetuneResult:
    """Translate, check exactness, train with the compression held, check it held; returns the new graph."""
    import torch

    from accelc.recovery.masks import preserved, sparsity_masks, summary
    from accelc.recovery.torch_graph import GraphModule, max_abs_error
    from accelc.recovery.training import train

    torch.manual_seed(opts.seed)
    module = GraphModule(student)
    err, scale = max_abs_error(module, x[:EXACT_SAMPLES])
    if not err <= EXACT_TOL * max(1.0, scale):
        raise AccelcError(f"finetune: the torch translation of the graph is {err:.3g} off ONNX Runtime "
                          f"(output scale {scale:.3g}, tolerance {EXACT_TOL:g} x scale); refusing to train it")
    masks = sparsity_masks(module, quantized_zeros)
    before = summary(module)
    history = train(module, x, teacher, labels, opts, masks, world)
    after = summary(module)
    broken = preserved(before, after, masks)
    if broken:  # masks and fake quantization make this impossible; a bug if it ever fires
        raise AccelcError(f"finetune: the compression was not preserved: {'; '.join(broken)}")
    return FinetuneResult(module.to_onnx(), history.epochs, history.seconds, history.best_epoch,
                          history.stopped_early, history.steps, err, {"before": before, "after": after},
                          opts.to_dict())


# -- inputs: student, teacher, data -------------------------------------------------------------------------------
