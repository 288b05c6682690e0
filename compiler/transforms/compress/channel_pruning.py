"""Structured pruning: remove whole output channels of Conv/Gemm/MatMul and shrink every consumer to match.

Not built on qonnx.transformation.pruning (PruneChannels/PropagateMasks/RemoveMaskedChannels), checked on tiny
models: it takes a hand-written mask spec (no L1/L2 choice), asserts on any Conv with a bias, passes no mask through
Gemm, Flatten, Reshape or Concat (their shapes go stale and the checker fails), raises IndexError on a [C,1,1] Mul
constant, merges residual masks by union instead of one consistent choice, and prunes a layer feeding a graph output.

Design: channel_plan walks the graph once and decides (channel segments per tensor, groups of producers whose
channels are coupled, the kept channels of each group by filter norms); channel_rewire then slices the constants.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass

from accelc.transforms.compress.channel_plan import CRITERIA, ChannelPlan, choose_kept
from accelc.transforms.compress.channel_rewire import ChannelRewriter


def _check_fraction(value: float, what: str) -> float:
    if not 0 <= value < 1:
        raise ValueError(f"{what} must be in [0, 1), not {value}")
    return float(value)


def prune_channels(model: ir.Model, ratio: float, criterion: str = "l1",
                   exclude: Collection[str] = (), overrides: Mapping[str, float] | None = None) -> dict:
    """Remove `ratio` of the output channels of every prunable Conv/Gemm/MatMul (in place); return stats.

    Keeps max(1, round(C*(1-ratio))) channels per layer, those with the largest L1/L2 filter norm; `overrides` maps
    node names to their own ratio, `exclude` names keep all their output channels. Producers joined by a residual
    Add share one choice (scored by their summed norms, at the smallest ratio among them). Stats: {"layers": {name:
    {"channels_before", "channels_after", "ratio"}}, "groups": channel groups found, "skipped": {name: reason},
    "channels_before", "channels_after"}.
    """
    criterion = criterion.lower()
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, not {criterion!r}")
    ratio = _check_fraction(ratio, "ratio")
    overrides = {k: _check_fraction(v, f"ratio of {k}") for k, v in (overrides or {}).items()}

    ShapeInferencePass()(model)  # the plan needs ranks and spatial sizes
    plan = ChannelPlan(model, criterion, exclude)
    kept = choose_kept(plan, ratio, overrides)
    ChannelRewriter(model, plan, kept).run()
    ShapeInferencePass()(model)

    blocked = plan.groups.root_reasons()
    layers, skipped = {}, dict(plan.skipped)
    for p in plan.producers:
        root = None if p.gid is None else plan.groups.find(p.gid)
        after = len(kept[root]) if root in kept else p.channels
        layers[p.node.name] = {"channels_before": p.channels, "channels_after": after,
                               "ratio": round(1 - after / p.channels, 4)}
        if p.node.name in plan.exclude:
            skipped[p.node.name] = "excluded"
        elif root in blocked:
            skipped[p.node.name] = blocked[root]
    return {
        "layers": layers,
        "groups": len({plan.groups.find(p.gid) for p in plan.producers if p.gid is not None}),
        "skipped": skipped,
        "channels_before": sum(s["channels_before"] for s in layers.values()),
        "channels_after": sum(s["channels_after"] for s in layers.values()),
    }
