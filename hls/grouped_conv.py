"""Exact lowering of grouped and depthwise Convs for hls4ml: a dense Conv with a block-diagonal weight.

hls4ml 1.3 has no grouped conv layer, and its depthwise layer (what its ONNX frontend makes of a Conv
with group == C_in) is only right in part; checked by C simulation (Vitis backend):

- channel multiplier 1, Latency strategy: exact, io_parallel and io_stream, 1-D and 2-D;
- channel multiplier 1, Resource strategy (which accelc picks by itself for large layers): io_parallel
  aborts the whole process (an assert in nnet_sepconv2d.h), io_stream gives wrong numbers (hls4ml's
  Resource weight transpose, meant for dense convs, also reorders the DepthwiseConv weights);
- channel multiplier > 1: io_parallel aborts (assert "only a depth multiplier of 1"), io_stream hangs;
- 1 < group < C_in: refused by the parser ("Depth multiplier must be an integer").

So every grouped Conv becomes a standard Conv (group=1) whose weight is zero outside the diagonal
blocks: W'[o, i] = W[o, i - g * C_in/G] when input channel i lies in output channel o's group g. That is
exact for any strategy and io type; with the Latency strategy HLS drops the constant-zero products.
A caller that guarantees the Latency strategy may keep multiplier-1 depthwise Convs as they are
(`native_depthwise`), which hls4ml lowers to its cheaper DepthwiseConv layer.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


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


def expand_grouped_convs(graph: onnx.GraphProto, native_depthwise: bool = False) -> list[str]:
    """Rewrite, in place, each Conv with group > 1 and a constant weight into a dense Conv of the same name.

    Returns the names of the rewritten nodes. Convs that cannot be rewritten (weight not an initializer,
    group not dividing the channels) are left alone: the fpga support check refuses them first.
    With native_depthwise, multiplier-1 depthwise Convs are left for hls4ml's DepthwiseConv layer, which is
    exact with the Latency strategy only.
    """
    inits = {i.name: i for i in graph.initializer}
    taken = {i.name for i in graph.initializer} | {t for n in graph.node for t in [*n.input, *n.output]}
    taken |= {v.name for v in [*graph.input, *graph.output, *graph.value_info]}
    rewritten = []
    for node in graph.node:
        if node.op_type != "Conv" or node.domain not in ("", "ai.onnx") or node.input[1] not in inits:
            continue
        group_attr = next((a for a in node.attribute if a.name == "group"), None)
        group = helper.get_attribute_value(group_attr) if group_attr is not None else 1
        if group == 1:
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if w.ndim < 3 or w.shape[0] % group:
            continue
        if native_depthwise and is_depthwise_multiplier_one(w.shape, group):
            continue
        name, k = f"{node.name}_W_dense", 1
        while name in taken:
            name, k = f"{node.name}_W_dense_{k}", k + 1
        taken.add(name)
        graph.initializer.append(numpy_helper.from_array(block_diagonal(w, group), name))
        node.input[1] = name
        group_attr.i = 1
        rewritten.append(node.name)
    return rewritten
