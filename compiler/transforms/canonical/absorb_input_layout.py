"""Absorb an input's layout Transpose into the artifact: a channels-last (NHWC) input that the graph first
transposes to NCHW becomes an NCHW graph input.

Keras's export reads its NHWC input through Transpose(0,3,1,2) before the first Conv (often after elementwise
ops such as a Rescaling). This pass gives the graph input the permuted shape, puts the inverse Transpose right
after it (the same function) and sinks that one (accelc.transforms.canonical.sink_transposes); where it cancels
against the graph's own Transpose, the graph no longer moves data at its input. Where it does not cancel the
graph is left as it was. The permutation is recorded in the model's metadata (accelc.spec.LAYOUT_KEY): the
artifact's interface stays in the source layout (the input TensorSpec keeps the NHWC shape and gets the perm),
and the artifact transposes the user's arrays before running the graph.
"""

from __future__ import annotations

import json

import onnx_ir as ir

from accelc.passes import AccelcPass, PassResult, register
from accelc.spec import LAYOUT_KEY
from accelc.transforms.canonical.sink_transposes import (
    inverse,
    perm_of,
    sink_transposes,
    unique_node_name,
    unique_value_name,
)
from accelc.transforms.rewrite import is_op

SEARCH_DEPTH = 32  # nodes looked at below an input for its layout Transpose


@register
class AbsorbInputLayout(AccelcPass):
    name = "absorb-input-layout"

    def call(self, model: ir.Model) -> PassResult:
        absorbed, warnings = {}, []
        for name in [v.name for v in model.graph.inputs]:
            x = next(v for v in model.graph.inputs if v.name == name)
            p = _layout_perm(x)
            if p is None:
                continue
            trial = ir.from_proto(ir.to_proto(model))
            tx = next(v for v in trial.graph.inputs if v.name == name)
            _insert_inverse(trial.graph, tx, p)
            sink_transposes(trial.graph, trial.opset_imports.get("", 13))
            if any(is_op(u.node, "Transpose") for u in tx.uses()):
                warnings.append(f"input '{name}': its layout Transpose (perm={p}) could not be absorbed (an op "
                                "between the input and it does not commute with a Transpose)")
                continue
            model.graph = trial.graph
            absorbed[name] = p
        if not absorbed:
            return PassResult(model, False, warnings=warnings)
        layouts = json.loads(model.metadata_props.get(LAYOUT_KEY, "{}"))
        perms = layouts.setdefault("inputs", {})
        for name, p in absorbed.items():
            old = perms.get(name)
            perms[name] = p if old is None else [old[i] for i in p]  # absorbed twice: the perms compose
        model.metadata_props[LAYOUT_KEY] = json.dumps(layouts)
        return PassResult(model, True, stats={"absorbed": absorbed}, warnings=warnings)


def _layout_perm(x: ir.Value) -> list[int] | None:
    """The perm of the first Transpose below input x (batch kept first), or None."""
    if x.shape is None or len(x.shape) < 3 or x in x.graph.outputs:
        return None
    seen, frontier = 0, [u.node for u in x.uses()]
    while frontier and seen < SEARCH_DEPTH:
        node = frontier.pop(0)
        seen += 1
        if is_op(node, "Transpose"):
            p = perm_of(node)
            if p is not None and len(p) == len(x.shape) and p[0] == 0 and p != list(range(len(p))):
                return p
            continue
        frontier += [u.node for out in node.outputs for u in out.uses()]
    return None


def _insert_inverse(graph: ir.Graph, x: ir.Value, p: list[int]) -> None:
    """x becomes the permuted input x' = x.transpose(p); Transpose(inverse(p)) of x' feeds x's old readers."""
    dims, uses = list(x.shape), list(x.uses())
    x.shape = ir.Shape([dims[i] for i in p])
    t = ir.node("Transpose", [x], {"perm": inverse(p)}, name=unique_node_name(graph, f"{x.name}_source_layout"))
    out = t.outputs[0]
    out.name, out.dtype, out.shape = unique_value_name(graph, f"{x.name}_source_layout"), x.dtype, ir.Shape(dims)
    graph.insert_before(next(iter(graph)), t)
    for use in uses:
        use.node.replace_input_with(use.idx, out)
