"""Channel pruning, the plan: which output channels of which Conv/Gemm/MatMul layers go, nothing edited yet.

(1) Every tracked tensor's channel axis (axis 1) is a list of segments (group, channels, elements per channel);
producers start groups, Add/Sum/Mul... join them (union-find), anything that cannot be rewired blocks its groups, and
each constant axis that follows a tensor's channels is recorded as an edit; (2) the kept channels of each group are
chosen by the summed filter norms of its members, at the smallest ratio among them. channel_rewire applies the plan.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

# Ops whose output channel c depends only on input channel c (the extra inputs must be scalars / non-channel).
PASS_THROUGH = frozenset({
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "Elu", "Selu", "Softplus", "MaxPool",
    "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Dropout", "Identity", "Pad",
})
# Elementwise ops with broadcasting: dynamic inputs must share channels, constants are sliced per channel.
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Sum", "PRelu"})
CRITERIA = ("l1", "l2")

Seg = tuple[int | None, int, int]  # (group id, None: never pruned; channels; elements per channel on the axis)


class _Unsupported(Exception):
    """A node cannot be rewired for the channels reaching it: their groups stay whole."""


@dataclass
class _Groups:
    """Union-find over channel groups; a group is started by one producer node."""

    parent: list[int] = field(default_factory=list)
    producers: list[ir.Node] = field(default_factory=list)
    reasons: dict[int, list[str]] = field(default_factory=dict)

    def new(self, node: ir.Node) -> int:
        self.parent.append(len(self.parent))
        self.producers.append(node)
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def block(self, g: int, reason: str) -> None:
        self.reasons.setdefault(g, []).append(reason)

    def root_reasons(self) -> dict[int, str]:
        """The first reason recorded anywhere in each blocked group, by root."""
        out: dict[int, str] = {}
        for g in sorted(self.reasons):
            out.setdefault(self.find(g), self.reasons[g][0])
        return out


@dataclass
class _Producer:
    node: ir.Node
    channels: int
    norms: np.ndarray  # per output channel, filter L1 or L2 norm
    gid: int | None = None  # None: listed but never pruned (reason in ChannelPlan.skipped)


def constant(value: ir.Value | None) -> np.ndarray | None:
    if value is None:
        return None
    tensor = ir.convenience.get_const_tensor(value)
    return None if tensor is None else tensor.numpy()


def _dims(value: ir.Value | None) -> list | None:
    if value is None or value.shape is None:
        return None
    return [d if isinstance(d, int) else None for d in value.shape]


def _length(segs: list[Seg]) -> int:
    return sum(n * inner for _, n, inner in segs)


def _norms(w: np.ndarray, out_axis: int, criterion: str) -> np.ndarray:
    rows = np.moveaxis(w, out_axis, 0).reshape(w.shape[out_axis], -1).astype(np.float64)
    return np.abs(rows).sum(axis=1) if criterion == "l1" else np.sqrt((rows**2).sum(axis=1))


def _const_axis(shape: tuple, rank: int, total: int) -> int | None:
    """Axis of a broadcast constant that lines up with channel axis 1 of a rank-`rank` tensor (None: it broadcasts
    over the channels, nothing to slice)."""
    if len(shape) > rank:
        raise _Unsupported(f"a constant of shape {list(shape)} adds dimensions")
    axis = 1 - (rank - len(shape))
    if axis < 0 or shape[axis] == 1:
        return None
    if shape[axis] != total:
        raise _Unsupported(f"a constant of shape {list(shape)} does not match {total} channels")
    return axis


class ChannelPlan:
    """Walks the graph once in topological order and records which constant axes follow which tensor's channels."""

    def __init__(self, model: ir.Model, criterion: str, exclude: Collection[str]) -> None:
        self.graph = model.graph
        self.criterion = criterion
        self.exclude = set(exclude)
        self.segs: dict[ir.Value, list[Seg]] = {}
        self.groups = _Groups()
        self.producers: list[_Producer] = []
        self.skipped: dict[str, str] = {}  # producers not pruned for a reason of their own
        self.edits: dict[tuple[ir.Node, int], list[tuple[int, ir.Value]]] = {}  # (node, input) -> [(axis, src)]
        self.regroup: list[tuple[ir.Node, ir.Value]] = []  # depthwise convs: group = kept channels of the input
        self.reshapes: list[tuple[ir.Node, ir.Value]] = []  # flatten-like Reshapes with an explicit feature count
        for node in self.graph:
            self._visit(node)
        for out in self.graph.outputs:
            if out in self.segs:
                self._block(self.segs[out], f"its channels reach the graph output '{out.name}'")
        for value, segs in self.segs.items():
            if any(user.graph is not self.graph for user in value.consumers()):
                self._block(segs, f"'{value.name}' is used inside a subgraph")

    # -- bookkeeping -------------------------------------------------------------------------------------------------

    def _block(self, segs: list[Seg], reason: str) -> None:
        for g, _, _ in segs:
            if g is not None:
                self.groups.block(g, reason)

    def _visit(self, node: ir.Node) -> None:
        tracked = [i for i, v in enumerate(node.inputs) if v is not None and v in self.segs]
        try:
            if node.domain not in ("", "ai.onnx"):
                if tracked:
                    raise _Unsupported(f"consumed by {node.domain}.{node.op_type} '{node.name}'")
                return
            handler = getattr(self, f"_op_{node.op_type}", None)
            if node.op_type in PASS_THROUGH:
                handler = self._pass_through
            elif node.op_type in ELEMENTWISE:
                handler = self._elementwise
            if handler is not None:
                handler(node, tracked)
            elif tracked:
                raise _Unsupported(f"consumed by {node.op_type} '{node.name}', which cannot be rewired")
        except _Unsupported as err:
            for i in tracked:
                self._block(self.segs[node.inputs[i]], str(err))
            for out in node.outputs:
                self.segs.pop(out, None)

    def _edit(self, node: ir.Node, index: int, axis: int, src: ir.Value) -> None:
        self.edits.setdefault((node, index), []).append((axis, src))

    def _only(self, node: ir.Node, tracked: list[int], allowed: tuple[int, ...] = (0,)) -> None:
        bad = [i for i in tracked if i not in allowed]
        if bad:
            raise _Unsupported(f"it feeds input {bad[0]} of {node.op_type} '{node.name}'")

    def _extra_outputs_unused(self, node: ir.Node) -> None:
        if any(out.uses() or out.is_graph_output() for out in node.outputs[1:]):
            raise _Unsupported(f"{node.op_type} '{node.name}' has a second output in use")

    # -- producers ---------------------------------------------------------------------------------------------------

    def _producer(self, node: ir.Node, w: np.ndarray, out_axis: int, bias: int | None, reason: str | None) -> None:
        """Start a group at the node's output (or list the node as skipped when it cannot own one)."""
        producer = _Producer(node, int(w.shape[out_axis]), _norms(w, out_axis, self.criterion))
        self.producers.append(producer)
        if reason is not None:
            self.skipped[node.name] = reason
            return
        producer.gid = self.groups.new(node)
        if node.name in self.exclude:
            self.groups.block(producer.gid, f"its channels are tied to excluded '{node.name}'")
        out = node.outputs[0]
        self._edit(node, 1, out_axis, out)
        if bias is not None:
            self._edit(node, 2, bias, out)
        self.segs[out] = [(producer.gid, producer.channels, 1)]

    def _op_Conv(self, node: ir.Node, tracked: list[int]) -> None:
        self._only(node, tracked)
        w = constant(node.inputs[1])
        group = node.attributes.get_int("group", 1)
        b = node.inputs[2] if len(node.inputs) > 2 else None
        bias = constant(b)
        if w is None:
            if tracked:
                raise _Unsupported(f"Conv '{node.name}' has a non-constant weight")
            return
        if group > 1 and w.shape[1] == 1:
            self._depthwise(node, tracked, w, group, b is not None and bias is None)
            return
        if tracked:
            if group != 1:
                raise _Unsupported(f"grouped Conv '{node.name}' (group={group})")
            self._edit(node, 1, 1, node.inputs[0])
        reason = None
        if group != 1:
            reason = f"grouped convolution (group={group})"
        elif b is not None and (bias is None or bias.ndim != 1):
            reason = "its bias is not a constant vector"
        self._producer(node, w, 0, 0 if bias is not None else None, reason)

    def _depthwise(self, node: ir.Node, tracked: list[int], w: np.ndarray, group: int, dynamic_bias: bool) -> None:
        """Depthwise: output channels c*m .. c*m+m-1 follow input channel c, so the channels pass through."""
        if not tracked:
            return
        segs = self.segs[node.inputs[0]]
        if group != _length(segs) or w.shape[0] % group:
            raise _Unsupported(f"grouped Conv '{node.name}' (group={group})")
        if dynamic_bias:
            raise _Unsupported(f"depthwise Conv '{node.name}' has a non-constant bias")
        mult = w.shape[0] // group
        out = node.outputs[0]
        self._edit(node, 1, 0, out)
        if len(node.inputs) > 2 and node.inputs[2] is not None:
            self._edit(node, 2, 0, out)
        self.regroup.append((node, node.inputs[0]))
        self.segs[out] = [(g, n, inner * mult) for g, n, inner in segs]

    def _op_Gemm(self, node: ir.Node, tracked: list[int]) -> None:
        self._only(node, tracked)
        w = constant(node.inputs[1])
        trans_b = node.attributes.get_int("transB", 0)
        if tracked:
            if node.attributes.get_int("transA", 0):
                raise _Unsupported(f"Gemm '{node.name}' transposes its input (transA=1)")
            if w is None:
                raise _Unsupported(f"Gemm '{node.name}' has a non-constant weight")
            self._edit(node, 1, 1 if trans_b else 0, node.inputs[0])
        if w is None or w.ndim != 2:
            return
        c_value = node.inputs[2] if len(node.inputs) > 2 else None
        c = constant(c_value)
        out_axis = 0 if trans_b else 1
        reason, bias = None, None
        if c_value is not None and c is None:
            reason = "its bias C is not a constant"
        elif c is not None:
            try:
                bias = _const_axis(c.shape, 2, w.shape[out_axis])
            except _Unsupported as err:
                reason = f"its bias C: {err}"
        self._producer(node, w, out_axis, bias, reason)

    def _op_MatMul(self, node: ir.Node, tracked: list[int]) -> None:
        self._only(node, tracked)
        w = constant(node.inputs[1])
        dims = _dims(node.inputs[0])
        rank = None if dims is None else len(dims)
        if tracked and (w is None or w.ndim != 2 or rank != 2):
            raise _Unsupported(f"MatMul '{node.name}' is not a 2-D input times a constant 2-D weight")
        if tracked:
            self._edit(node, 1, 0, node.inputs[0])
        if w is None or w.ndim != 2:
            return
        reason = None if rank == 2 else f"its input is not 2-D (rank {rank})"
        self._producer(node, w, 1, None, reason)

    # -- channel-preserving consumers ---------------------------------------------------------------------------------

    def _pass_through(self, node: ir.Node, tracked: list[int]) -> None:
        if not tracked:
            return
        self._only(node, tracked)
        self._extra_outputs_unused(node)
        if node.op_type == "Pad":
            self._check_pad(node)
        self.segs[node.outputs[0]] = self.segs[node.inputs[0]]

    def _check_pad(self, node: ir.Node) -> None:
        pads = constant(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] is not None else None
        if pads is None and "pads" in node.attributes:
            pads = np.asarray(node.attributes.get_ints("pads"))
        if len(node.inputs) > 3 and node.inputs[3] is not None:
            raise _Unsupported(f"Pad '{node.name}' pads selected axes only")
        if pads is None or pads.size % 2 or pads[1] != 0 or pads[pads.size // 2 + 1] != 0:
            raise _Unsupported(f"Pad '{node.name}' may pad the channel axis")

    def _op_BatchNormalization(self, node: ir.Node, tracked: list[int]) -> None:
        if not tracked:
            return
        self._only(node, tracked)
        self._extra_outputs_unused(node)
        total = _length(self.segs[node.inputs[0]])
        if node.attributes.get_int("training_mode", 0):
            raise _Unsupported(f"BatchNormalization '{node.name}' is in training mode")
        for i in range(1, 5):
            p = constant(node.inputs[i])
            if p is None or p.shape != (total,):
                raise _Unsupported(f"BatchNormalization '{node.name}' has non-constant or odd-shaped parameters")
        for i in range(1, 5):
            self._edit(node, i, 0, node.inputs[0])
        self.segs[node.outputs[0]] = self.segs[node.inputs[0]]

    def _elementwise(self, node: ir.Node, tracked: list[int]) -> None:
        """Dynamic inputs carrying channels are joined (residual Add); constants are sliced per channel."""
        if not tracked:
            return
        if node.op_type == "PRelu":
            self._only(node, tracked)
        out_dims = _dims(node.outputs[0])
        if out_dims is None:
            raise _Unsupported(f"{node.op_type} '{node.name}' has no known output rank")
        rank = len(out_dims)
        first = self.segs[node.inputs[tracked[0]]]
        total = _length(first)
        slices = []
        for i, value in enumerate(node.inputs):
            if value is None:
                continue
            if i in tracked:
                dims = _dims(value)
                if dims is None or len(dims) != rank:
                    raise _Unsupported(f"{node.op_type} '{node.name}' broadcasts a channel tensor")
                self._join(node, first, self.segs[value])
                continue
            const = constant(value)
            if const is not None:
                axis = _const_axis(const.shape, rank, total)
                if axis is not None:
                    slices.append((i, axis))
                continue
            dims = _dims(value)  # a dynamic input without prunable channels may only broadcast over them
            axis = None if dims is None or len(dims) > rank else 1 - (rank - len(dims))
            if axis is None or (axis >= 0 and dims[axis] != 1):
                raise _Unsupported(f"{node.op_type} '{node.name}' combines them with '{value.name}', "
                                   "which cannot be pruned")
        for i, axis in slices:
            self._edit(node, i, axis, node.outputs[0])
        self.segs[node.outputs[0]] = first

    def _join(self, node: ir.Node, a: list[Seg], b: list[Seg]) -> None:
        """Both tensors meet channel by channel: their groups must drop the same channels."""
        if [(n, inner) for _, n, inner in a] != [(n, inner) for _, n, inner in b]:
            raise _Unsupported(f"{node.op_type} '{node.name}' adds tensors whose channels are laid out differently")
        for (ga, _, _), (gb, _, _) in zip(a, b):
            if (ga is None) != (gb is None):
                raise _Unsupported(f"{node.op_type} '{node.name}' combines them with channels that cannot be pruned")
        for (ga, _, _), (gb, _, _) in zip(a, b):
            if ga is not None:
                self.groups.union(ga, gb)

    # -- layout changes ----------------------------------------------------------------------------------------------

    def _op_Concat(self, node: ir.Node, tracked: list[int]) -> None:
        if not tracked:
            return
        dims = _dims(node.outputs[0]) or _dims(node.inputs[tracked[0]])
        axis = node.attributes.get_int("axis", 1)
        if dims is None or (axis if axis >= 0 else axis + len(dims)) != 1:
            raise _Unsupported(f"Concat '{node.name}' joins on another axis than the channels")
        segs: list[Seg] = []
        for value in node.inputs:
            if value in self.segs:
                segs += self.segs[value]
                continue
            d = _dims(value)
            if d is None or len(d) < 2 or d[1] is None:
                raise _Unsupported(f"Concat '{node.name}' has an input of unknown channel count")
            segs.append((None, d[1], 1))
        self.segs[node.outputs[0]] = segs

    def _flatten(self, node: ir.Node, dims: list | None) -> None:
        """Channel c of an NCHW tensor owns flattened features c*H*W .. (c+1)*H*W-1."""
        if dims is None or len(dims) < 2 or any(d is None for d in dims[2:]):
            raise _Unsupported(f"{node.op_type} '{node.name}' has an input of unknown spatial size")
        inner = int(np.prod(dims[2:], dtype=np.int64))
        self.segs[node.outputs[0]] = [(g, n, k * inner) for g, n, k in self.segs[node.inputs[0]]]

    def _op_Flatten(self, node: ir.Node, tracked: list[int]) -> None:
        if not tracked:
            return
        dims = _dims(node.inputs[0])
        axis = node.attributes.get_int("axis", 1)
        if dims is None or (axis if axis >= 0 else axis + len(dims)) != 1:
            raise _Unsupported(f"Flatten '{node.name}' does not flatten from the channel axis")
        self._flatten(node, dims)

    def _op_Reshape(self, node: ir.Node, tracked: list[int]) -> None:
        """Reshape to [N, -1] / [N, C*H*W] with a constant shape is a Flatten."""
        if not tracked:
            return
        self._only(node, tracked)
        shape = constant(node.inputs[1])
        dims = _dims(node.inputs[0])
        not_flatten = _Unsupported(f"Reshape '{node.name}' is not a flatten to [N, features]")
        if shape is None or shape.shape != (2,) or dims is None or any(d is None for d in dims[1:]):
            raise not_flatten
        a, b = (int(s) for s in shape)
        features = int(np.prod(dims[1:], dtype=np.int64))
        batch_ok = a == dims[0] or (a == 0 and not node.attributes.get_int("allowzero", 0))
        if not ((batch_ok and b in (-1, features)) or (a == -1 and b == features)):
            raise not_flatten
        self._flatten(node, dims)
        if b != -1:
            self.reshapes.append((node, node.outputs[0]))



def choose_kept(plan: ChannelPlan, ratio: float, overrides: Mapping[str, float]) -> dict[int, np.ndarray]:
    """Kept channel indices (ascending) of every prunable group that loses channels, by group root."""
    blocked = plan.groups.root_reasons()
    members: dict[int, list[_Producer]] = {}
    for p in plan.producers:
        if p.gid is not None:
            members.setdefault(plan.groups.find(p.gid), []).append(p)
    kept: dict[int, np.ndarray] = {}
    for root, group in members.items():
        if root in blocked:
            continue
        channels = group[0].channels
        r = min(overrides.get(p.node.name, ratio) for p in group)  # no member is pruned more than it asked
        k = max(1, round(channels * (1 - r)))
        if k < channels:
            score = np.sum([p.norms for p in group], axis=0)
            kept[root] = np.sort(np.argsort(-score, kind="stable")[:k])
    return kept
