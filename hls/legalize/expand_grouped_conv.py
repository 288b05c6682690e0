"""Grouped and depthwise Convs -> a dense Conv (group=1) whose weight is block-diagonal.

hls4ml 1.3 has no grouped conv layer, and its depthwise layer (what its ONNX frontend makes of a Conv
with group == C_in) is only right in part; checked by C simulation (Vitis backend):

- channel multiplier 1, Latency strategy: exact, io_parallel and io_stream, 1-D and 2-D;
- channel multiplier 1, Resource strategy (which accelc picks by itself for large layers): io_parallel
  aborts the whole process (an assert in nnet_sepconv2d.h), io_stream gives wrong numbers (hls4ml's
  Resource weight transpose, meant for dense convs, also reorders the DepthwiseConv weights);
- channel multiplier > 1: io_parallel aborts (assert "only a depth multiplier of 1"), io_stream hangs;
- 1 < group < C_in: refused by the parser ("Depth multiplier must be an integer").

So a grouped Conv becomes a standard Conv whose weight is zero outside the diagonal blocks:
W'[o, i] = W[o, i - g * C_in/G] when input channel i lies in output channel o's group g. That is exact for
any strategy and io type; with the Latency strategy HLS drops the constant-zero products. Multiplier-1
depthwise Convs are kept for hls4ml's cheaper DepthwiseConv layer when every one of them is lowered with the
Latency strategy: the user asked for it (target option ``strategy``), or the automatic per-layer choice
(accelc.fpga_rules.needs_resource, what accelc.hls.project applies) keeps them all there. The Conv keeps its
name and output. Kept (the support check refuses them): a weight that is not a constant, a group not dividing
the output channels.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.fpga_rules import needs_resource
from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.canonical.infer_shapes import InferShapes
from accelc.transforms.rewrite import add_initializer, attr, const_array, is_op, replace_input, spatial_shape


def block_diagonal(w: np.ndarray, group: int) -> np.ndarray:
    """(C_out, C_in/G, *k) grouped weight -> the equivalent (C_out, C_in, *k) dense weight."""
    c_out, per_group_in = w.shape[:2]
    if group < 1 or c_out % group:
        raise ValueError(f"group={group} does not divide the {c_out} output channels")
    per_group_out = c_out // group
    dense = np.zeros((c_out, per_group_in * group, *w.shape[2:]), dtype=w.dtype)
    for g in range(group):
        rows = slice(g * per_group_out, (g + 1) * per_group_out)
        dense[rows, g * per_group_in : (g + 1) * per_group_in] = w[rows]
    return dense


def is_depthwise_multiplier_one(w_shape: tuple[int, ...], group: int) -> bool:
    """group == C_in == C_out: one filter per input channel."""
    return group > 1 and w_shape[1] == 1 and w_shape[0] == group


def _depthwise_convs(model: ir.Model) -> list[tuple[ir.Node, np.ndarray]]:
    found = []
    for node in model.graph:
        w = const_array(node.inputs[1]) if is_op(node, "Conv") and len(node.inputs) > 1 else None
        if w is not None and w.ndim >= 3 and is_depthwise_multiplier_one(w.shape, attr(node, "group", 1)):
            found.append((node, w))
    return found


def native_depthwise_is_safe(model: ir.Model, options: dict) -> bool:
    """Whether every multiplier-1 depthwise Conv is lowered with the Latency strategy: the user's `strategy`
    option, else the automatic rule on each one's nonzero multiplications (weights x output pixels)."""
    strategy = options.get("strategy")
    if strategy is not None:
        return str(strategy).lower() == "latency"
    convs = _depthwise_convs(model)
    if any(spatial_shape(node.outputs[0]) is None for node, _ in convs):
        InferShapes()(model)  # an earlier rewrite may have made shapes static (resize-constants)
    for node, w in convs:
        out = spatial_shape(node.outputs[0])
        if out is None or needs_resource(int(np.count_nonzero(w)) * int(np.prod(out))):
            return False
    return True


@register
class ExpandGroupedConv(AccelcPass):
    name = "expand-grouped-conv"

    def call(self, model: ir.Model) -> PassResult:
        native = native_depthwise_is_safe(model, self.context.target_options or {})
        stats: dict = {"expanded": 0, "native_depthwise": 0}
        warnings = []
        for node in model.graph:
            group = attr(node, "group", 1)
            if not is_op(node, "Conv") or group == 1:
                continue
            w = const_array(node.inputs[1])
            if w is None or w.ndim < 3 or group < 1 or w.shape[0] % group:
                why = "the weight is not a constant" if w is None else f"group={group} does not fit weight {w.shape}"
                warnings.append(f"Conv '{node.name}' (group={group}) kept: {why}")
                continue
            if native and is_depthwise_multiplier_one(w.shape, group):
                stats["native_depthwise"] += 1  # hls4ml's DepthwiseConv, exact under the Latency strategy
                continue
            dense = add_initializer(model.graph, f"{node.name}_W_dense", block_diagonal(w, group), dtype=None)
            replace_input(model.graph, node, 1, dense)
            node.attributes["group"] = ir.AttrInt64("group", 1)
            stats["expanded"] += 1
        return PassResult(model, bool(stats["expanded"]), stats=stats, warnings=warnings)
