"""The `prune` pass: unstructured magnitude pruning (zeros) or structured channel pruning (smaller shapes).

Its fidelity to the graph before it is judged against the budget (accelc.transforms.compress._budget)."""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from accelc.errors import PassError
from accelc.fpga_rules import LARGE_LAYER_MULTS
from accelc.passes import AccelcPass, PassContext, PassResult, register
from accelc.transforms.canonical.infer_shapes import InferShapes
from accelc.transforms.compress._baseline import baseline
from accelc.transforms.compress._budget import check_budget
from accelc.transforms.compress._measure import fidelity, size_figures
from accelc.transforms.compress._select import check_fraction, names_option, ratios_option, resolve
from accelc.transforms.compress.magnitude_pruning import magnitude_prune, prunable_layers

MODES = ("unstructured", "channel")
# Where the multipliers of a pruned model go on fpga; see accelc.hls.multipliers.
FPGA_ZEROS_NOTE = (
    "on fpga, zero weights remove multipliers only in Latency-strategy layers (HLS constant-folds x*0, "
    "fully at reuse factor 1); Resource-strategy layers keep every multiplier (accelc's default for layers "
    f"with more than {LARGE_LAYER_MULTS} nonzero multiplications, unless --strategy latency; hls4ml 1.3's "
    "compressed Dense kernel, which would skip zeros there, fails to generate) — the artifact's manifest counts the "
    "multipliers per layer"
)


@register
class Prune(AccelcPass):
    """prune:sparsity=0.8[,scope=global|layer][,exclude=conv1;fc2][,layers=fc1:0.9]
    prune:mode=channel,ratio=0.5[,criterion=l1|l2][,exclude=…][,layers=…]"""

    name = "prune"

    def __init__(self, context: PassContext | None = None, mode: str | None = None, sparsity: float | None = None,
                 ratio: float | None = None, scope: str = "global", criterion: str = "l1", exclude: Any = None,
                 layers: Any = None, **unknown: Any) -> None:
        super().__init__(context, **unknown)
        self.mode = str(mode or ("channel" if ratio is not None and sparsity is None else "unstructured")).lower()
        if self.mode not in MODES:
            raise PassError(f"prune: mode must be one of {', '.join(MODES)}, not {mode!r}")
        # DESIGN.md: a bare `prune` is 50% unstructured; `prune:mode=channel` removes half the channels.
        if self.mode == "unstructured":
            if ratio is not None:
                raise PassError("prune: unstructured pruning takes sparsity=S (0 <= S < 1), e.g. prune:sparsity=0.8")
            self.amount = check_fraction(float(0.5 if sparsity is None else sparsity), "prune: sparsity")
        else:
            if sparsity is not None:
                raise PassError("prune: channel pruning takes ratio=R (0 <= R < 1), e.g. prune:mode=channel,ratio=0.5")
            self.amount = check_fraction(float(0.5 if ratio is None else ratio), "prune: ratio")
        if scope not in ("global", "layer"):
            raise PassError(f"prune: scope must be 'global' or 'layer', not {scope!r}")
        if str(criterion).lower() not in ("l1", "l2"):
            raise PassError(f"prune: criterion must be 'l1' or 'l2', not {criterion!r}")
        self.scope = scope
        self.criterion = str(criterion).lower()
        self.exclude = names_option(exclude)
        self.layers = ratios_option(layers, "prune: layers")

    @property
    def options(self) -> dict:
        opts: dict[str, Any] = {"mode": self.mode}
        if self.mode == "unstructured":
            opts.update(sparsity=self.amount, scope=self.scope)
        else:
            opts.update(ratio=self.amount, criterion=self.criterion)
        if self.exclude:
            opts["exclude"] = self.exclude
        if self.layers:
            opts["layers"] = self.layers
        return opts

    def call(self, model: ir.Model) -> PassResult:
        before_proto, before, candidates, exclude = baseline(model, prunable_layers, self.exclude, "prune: exclude")
        overrides = {resolve(candidates, [k], "prune: layers")[k]: v for k, v in self.layers.items()}
        if self.mode == "unstructured":
            stats = magnitude_prune(model, self.amount, self.scope, exclude, overrides)
        else:
            from accelc.transforms.compress.channel_pruning import prune_channels

            stats = prune_channels(model, self.amount, self.criterion, exclude, overrides)
            InferShapes()(model)
        after = size_figures(model)
        stats = {"mode": self.mode, "before": before, "after": after, **stats,
                 "fidelity": fidelity(before_proto, model, self.context)}
        stats["summary"] = _summary(stats)
        changed = (after["nonzero_params"] < before["nonzero_params"] if self.mode == "unstructured"
                   else stats["channels_after"] < stats["channels_before"])
        milder = "a lower sparsity" if self.mode == "unstructured" else "a lower ratio"
        return check_budget(PassResult(model, changed, stats=stats, warnings=self._warnings(stats)), self.name,
                            self.context, milder)

    def _warnings(self, stats: dict) -> list[str]:
        warnings = []
        target = self.context.target
        if self.mode == "unstructured" and target in ("cpu", "cuda"):
            warnings.append(f"unstructured zeros do not make ONNX Runtime faster on {target} (its dense kernels "
                            "multiply by zero as well); they only make the model compressible — "
                            "use prune:mode=channel for speed")
        if self.mode == "unstructured" and target == "fpga":
            warnings.append(FPGA_ZEROS_NOTE)
        if self.mode == "channel":
            for name, reason in stats.get("skipped", {}).items():
                # A classifier's outputs are the model's: expected, and in the stats; anything else is news.
                if "graph output" not in reason and reason != "excluded":
                    warnings.append(f"{name} not pruned: {reason}")
        return warnings


def _summary(stats: dict) -> str:
    """One line for the CLI: what was realised (not what was asked) and what it cost."""
    b, a, fid = stats["before"], stats["after"], stats["fidelity"]
    if stats["mode"] == "unstructured":
        head = (f"sparsity {stats['sparsity']:.1%} realised over {len(stats['layers'])} layer(s); "
                f"nonzero MACs {b['nonzero_macs']:,} -> {a['nonzero_macs']:,}")
    else:
        head = (f"channels {stats['channels_before']} -> {stats['channels_after']}; "
                f"MACs {b['macs']:,} -> {a['macs']:,}, params {b['params']:,} -> {a['params']:,}")
    agree = f", top-1 agreement {fid['top1_agreement']:.3f}" if "top1_agreement" in fid else ""
    return f"{head}; vs before on {fid['samples']} {fid['data']} inputs: max abs err {fid['max_abs_err']:.3g}{agree}"
