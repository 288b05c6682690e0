"""Fixed-batch exports -> a free batch: a model exported with its dummy batch baked in (1, or e.g. the whole
dataset, 789444) runs on any number of samples when no op mixes samples.

Exporters without dynamic axes write the dummy input's batch into the graph: the input's dim 0, and every
Reshape target that names it (`x.view(1, -1)`, `x.view(x.size(0), -1)` traced at 256 -> [256, -1]). When every
op keeps samples apart (batch_rules: the batch axis is followed from the inputs, node by node), the batch is
free: dim 0 of the inputs, outputs and batched values becomes symbolic, a Reshape target that names the batch
becomes [-1, the static dims] (reshape-to-flatten then recognizes a flatten), and a batch-1 Flatten(axis=0)
becomes the Flatten(axis=1) it computes. Each is exact at the exported batch and computes the same per-sample
function at any other.

Where an op needs the batch (a reduction or Softmax over axis 0, a Reshape merging it with the features, a
Transpose moving it, BatchNormalization in training mode, an op batch_rules does not know), the graph is left
as exported, and the node is named. Either way the verdict goes into the model's metadata (spec.BATCH_KEY), from
where the manifest reports it and a run with another number of samples is refused, saying why.
"""

from __future__ import annotations

import json
import math

import numpy as np
import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass

from accelc.passes import AccelcPass, PassResult, register
from accelc.spec import BATCH_KEY, BatchNote
from accelc.transforms.canonical.batch_rules import BATCH, RULES, SHAPE_INPUTS, Flow, dims, shape_value
from accelc.transforms.rewrite import DEFAULT_DOMAINS, add_initializer, attr, replace_input

BATCH_DIM = "batch"  # the name of a free batch dim, as the frontend gives a symbolic one
_SHAPE_OPS = {"Cast", "Identity", "Gather", "Concat", "Unsqueeze", "Squeeze", "Slice", "Add", "Sub", "Mul", "Div",
              "Max", "Min", "ReduceProd"}
_QONNX_OPS = {"Quant", "BipolarQuant", "Trunc", "MultiThreshold"}


def exported_batch(model: ir.Model) -> int | None:
    """The batch size the inputs were exported with, when every input has the same static dim 0."""
    leads = {v.shape[0] if v.shape is not None and len(v.shape) else None for v in model.graph.inputs}
    lead = leads.pop() if len(leads) == 1 else None
    return lead if isinstance(lead, int) and lead > 0 else None


def _reshape_dims(data: list[int], target: list[int], allowzero: int) -> list[int] | None:
    """Reshape's output dims (0 copies the input's dim unless allowzero, -1 takes the rest), or None."""
    out = [data[i] if t == 0 and not allowzero and i < len(data) else t for i, t in enumerate(target)]
    known = math.prod(d for d in out if d != -1)
    if out.count(-1) > 1 or any(d < -1 for d in out) or (known == 0 and -1 in out):
        return None
    if -1 in out:
        out[out.index(-1)] = math.prod(data) // known
    return out if math.prod(out) == math.prod(data) else None


def _reshape(node: ir.Node, flow: Flow) -> str | None:
    """A Reshape keeps the batch when its output's axis 0 is the input's and the rest only regroups a sample;
    a target that names the batch as a number is freed to [-1, the static dims]."""
    if flow.has(node.inputs[1]):
        return "reshapes by the batch's values"
    target, data = flow.entries(node.inputs[1]), dims(node.inputs[0])
    if target is None or data is None or not all(isinstance(d, int) for d in data) or target.ndim != 1:
        return "reshapes to a target that is not constant"
    entries = list(target)
    if any(e is None for e in entries) or any(e is BATCH for e in entries[1:]):
        return "reshapes to a target computed from the batch size"
    allowzero = attr(node, "allowzero", 0)
    out = _reshape_dims(data, [flow.batch if e is BATCH else int(e) for e in entries], allowzero)
    if out is None:
        return f"reshapes {data} to {entries}, which does not fit"
    if not out or out[0] != flow.batch or math.prod(out[1:]) != math.prod(data[1:]):
        return f"merges the batch with other axes ({data} -> {out})"
    first = entries[0]
    if first is BATCH or (first == 0 and not allowzero) or first == -1:
        return None  # follows the input's batch at run time already
    graph = node.graph

    def fix() -> None:
        new = add_initializer(graph, f"{node.name or 'reshape'}_free_batch", np.array([-1, *out[1:]]), np.int64)
        replace_input(graph, node, 1, new)  # drops the old target, an initializer or a Constant node

    flow.fixes.append((node, fix))
    return None


def _rule(node: ir.Node):
    if node.op_type == "Reshape" and node.domain in DEFAULT_DOMAINS:
        return _reshape
    if node.domain in DEFAULT_DOMAINS or (node.op_type in _QONNX_OPS and node.domain.startswith(("qonnx", "finn"))):
        return RULES.get(node.op_type)
    return None


def _holds_batch(flow: Flow, v: ir.Value) -> bool:
    return v in flow.shapes and any(not isinstance(e, int) for e in flow.shapes[v].reshape(-1))


def _needs_batch(node: ir.Node, flow: Flow) -> str | None:
    """Why this node needs the batch fixed, or None when its outputs carry it at axis 0."""
    for i, v in enumerate(node.inputs):
        if v is not None and _holds_batch(flow, v) and i not in SHAPE_INPUTS.get(node.op_type, ()):
            return "uses the batch size as a number"
    if node.op_type == "Size":
        return "uses the batch size as a number"
    rule = _rule(node)
    if rule is None:
        return "is an op accelc cannot tell keeps samples apart"
    reason = rule(node, flow)
    if reason is None:
        flow.batched.update(v for v in node.outputs)
    return reason


def analyze(model: ir.Model, batch: int) -> tuple[Flow, str | None]:
    """Follow the batch from the inputs through the graph: the flow, and the first node that needs it fixed."""
    flow = Flow(batch, batched={v for v in model.graph.inputs if v.shape is not None and len(v.shape)})
    for node in model.graph:
        ins = [v for v in node.inputs if v is not None]
        if not any(flow.has(v) or v in flow.shapes for v in ins):
            continue  # a constant subgraph: no sample reaches it
        batched = any(flow.has(v) for v in ins)
        if (node.op_type == "Shape" and batched) or (not batched and node.op_type in _SHAPE_OPS):
            value = shape_value(node, flow)
            if value is not None:
                flow.shapes[node.outputs[0]] = value
                continue
        if not batched and not any(_holds_batch(flow, v) for v in ins):
            continue  # computed from static dims only: a constant
        reason = _needs_batch(node, flow)
        if reason is not None:
            return flow, f"node '{node.name or node.outputs[0].name}' ({node.op_type}) {reason}"
    for v in model.graph.outputs:
        if _holds_batch(flow, v):
            return flow, f"output '{v.name}' is the batch size"
    return flow, None


def _free(model: ir.Model, flow: Flow) -> None:
    """Apply the fixes, then make dim 0 of every value that carries the batch symbolic."""
    for _, fix in flow.fixes:
        fix()
    for v in flow.batched:
        if v.shape is not None and len(v.shape) and v.shape[0] == flow.batch:
            v.shape = ir.Shape([ir.SymbolicDim(BATCH_DIM), *list(v.shape)[1:]])


@register
class FreeBatch(AccelcPass):
    """A batch baked in at export becomes a free (symbolic) batch when no op mixes samples."""

    name = "free-batch"

    def call(self, model: ir.Model) -> PassResult:
        batch = exported_batch(model)
        if batch is None:
            return PassResult(model, False)  # a free batch already (or inputs that do not share one)
        ShapeInferencePass(strict_mode=False)(model)  # the static dims the rules read (at the exported batch)
        flow, reason = analyze(model, batch)
        note = BatchNote(batch, reason is None, reason or "")
        model.metadata_props[BATCH_KEY] = json.dumps(note.to_dict())
        stats = {"exported": batch, "free": note.free}
        if reason is not None:
            return PassResult(model, False, stats={**stats, "reason": reason},
                              warnings=[f"the batch stays fixed at {batch}: {reason}"])
        rewritten: dict[str, int] = {}
        for node, _ in flow.fixes:
            rewritten[node.op_type] = rewritten.get(node.op_type, 0) + 1
        _free(model, flow)
        return PassResult(model, True, stats={**stats, "rewritten": rewritten})
