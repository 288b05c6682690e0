"""Channel pruning, the rewiring: slice the weights, biases, BN parameters and consumers' constants a ChannelPlan
recorded to the kept channels, fix depthwise groups and flatten Reshapes, and shrink the tracked tensors' shapes."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from accelc.transforms.compress.channel_plan import ChannelPlan, constant


class ChannelRewriter:
    """Maps tracked tensors to kept element indices and slices the constants recorded by the plan."""

    def __init__(self, model: ir.Model, plan: ChannelPlan, kept: dict[int, np.ndarray]) -> None:
        self.graph = model.graph
        self.plan = plan
        self.kept = kept  # group root -> kept channel indices (only groups that lose channels)
        self._names = {v.name for v in self.graph.initializers.values()} | {v.name for v in self.graph.inputs}
        self._names |= {v.name for n in self.graph for v in n.outputs}

    def keep(self, value: ir.Value) -> np.ndarray | None:
        """Kept element indices along axis 1 of a tracked tensor (None: nothing removed)."""
        segs = self.plan.segs.get(value)
        if segs is None:
            return None
        parts, offset, changed = [], 0, False
        for g, n, inner in segs:
            channels = self.kept.get(self.plan.groups.find(g)) if g is not None else None
            if channels is None:
                parts.append(np.arange(offset, offset + n * inner))
            else:
                changed = True
                parts.append((offset + channels[:, None] * inner + np.arange(inner)[None, :]).ravel())
            offset += n * inner
        return np.concatenate(parts) if changed else None

    def run(self) -> None:
        for (node, index), slices in self.plan.edits.items():
            arr = original = constant(node.inputs[index])
            for axis, src in slices:
                idx = self.keep(src)
                if idx is not None:
                    arr = np.take(arr, idx, axis=axis)
            if arr is not original:
                self._replace(node, index, arr)
        for node, src in self.plan.regroup:
            idx = self.keep(src)
            if idx is not None:
                node.attributes["group"] = ir.AttrInt64("group", len(idx))
        for node, out in self.plan.reshapes:
            idx = self.keep(out)
            if idx is not None:
                shape = constant(node.inputs[1]).copy()
                shape[1] = len(idx)
                self._replace(node, 1, shape)
        for value in self.plan.segs:
            idx = self.keep(value)
            if idx is not None and value.shape is not None:
                dims = list(value.shape)
                dims[1] = len(idx)
                value.shape = ir.Shape(dims)

    def _replace(self, node: ir.Node, index: int, arr: np.ndarray) -> None:
        """A new initializer for this input; the old constant goes when nothing else uses it, and its name with it."""
        old = node.inputs[index]
        name = self._fresh(f"{old.name}_pruned")
        tensor = ir.tensor(arr, name=name)
        new = ir.Value(name=name, shape=ir.Shape(arr.shape), type=ir.TensorType(tensor.dtype), const_value=tensor)
        self.graph.initializers.add(new)
        node.replace_input_with(index, new)
        if old.uses() or old.is_graph_output() or old.is_graph_input():
            return
        producer = old.producer()
        if old.is_initializer():
            del self.graph.initializers[old.name]
        elif producer is not None and producer.op_type == "Constant":
            self.graph.remove(producer, safe=True)
        else:
            return
        new.name = old.name  # keeps weight names stable for later passes and reports

    def _fresh(self, base: str) -> str:
        name, i = base, 0
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name
