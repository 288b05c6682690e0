"""The `depthwise` pass: factorize standard KxK convs into depthwise KxK + pointwise 1x1 within an error budget.

A conv is rewritten only when the factorization needs fewer MACs and its output, on calibration data
(or seeded random inputs), stays within `tol` relative RMS error of the original; otherwise it is
left alone and the stats say why. The whole model's fidelity is then judged against the budget
(accelc.transforms.compress._budget): per-layer errors within `tol` can still add up. Grouped/depthwise convs
already in a model need no pass: every target lowers them as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from accelc.errors import PassError
from accelc.passes import AccelcPass, PassContext, PassResult, register
from accelc.reference import Reference
from accelc.transforms.canonical.infer_shapes import InferShapes
from accelc.transforms.compress._baseline import baseline
from accelc.transforms.compress._budget import check_budget
from accelc.transforms.compress._measure import fidelity, fidelity_inputs, size_figures, weight_of
from accelc.transforms.compress._select import names_option
from accelc.transforms.compress.conv_factorization import Factorization, factorize, macs_per_pixel, output_error


@register
class Depthwise(AccelcPass):
    """depthwise[:tol=0.05][,multiplier=auto|M][,exclude=conv1;conv2]"""

    name = "depthwise"

    def __init__(self, context: PassContext | None = None, tol: float = 0.05, multiplier: Any = "auto",
                 exclude: Any = None, **unknown: Any) -> None:
        super().__init__(context, **unknown)
        self.tol = float(tol)
        if not self.tol > 0:
            raise PassError(f"depthwise: tol must be > 0 (a relative output error), got {tol}")
        if str(multiplier).lower() == "auto":
            self.multiplier: int | None = None
        elif isinstance(multiplier, int) and not isinstance(multiplier, bool) and multiplier >= 1:
            self.multiplier = multiplier
        else:
            raise PassError(f"depthwise: multiplier must be 'auto' or an integer >= 1, got {multiplier!r}")
        self.exclude = names_option(exclude)

    @property
    def options(self) -> dict:
        opts: dict[str, Any] = {"tol": self.tol, "multiplier": self.multiplier or "auto"}
        if self.exclude:
            opts["exclude"] = self.exclude
        return opts

    def call(self, model: ir.Model) -> PassResult:
        before_proto, before, convs, exclude = baseline(model, _convs, self.exclude, "depthwise: exclude")
        x = fidelity_inputs(before_proto, self.context)
        activations = Reference(before_proto).run_all(x)
        graph_inputs = {v.name: arr for v, arr in zip(model.graph.inputs, x)}
        layers: dict[str, dict] = {}
        for node in convs:
            if node.name in exclude:
                layers[node.name] = {"status": "excluded"}
                continue
            layers[node.name] = self._layer(model, node, activations, graph_inputs)
        if any(s["status"] == "rewritten" for s in layers.values()):
            InferShapes()(model)
        after = size_figures(model)
        rewritten = [n for n, s in layers.items() if s["status"] == "rewritten"]
        stats = {"layers": layers, "rewritten": len(rewritten), "before": before, "after": after,
                 "fidelity": fidelity(before_proto, model, self.context)}
        stats["summary"] = (f"{len(rewritten)} of {len(convs)} conv(s) factorized; MACs {before['macs']:,} -> "
                            f"{after['macs']:,}; vs before: max abs err {stats['fidelity']['max_abs_err']:.3g}")
        warnings = [f"{n} left alone: {s['reason']}" for n, s in layers.items() if s["status"] == "declined"]
        return check_budget(PassResult(model, bool(rewritten), stats=stats, warnings=warnings), self.name,
                            self.context, "a smaller tol")

    def _layer(self, model: ir.Model, node: ir.Node, activations: dict, graph_inputs: dict) -> dict:
        w = weight_of(node)
        c_out, c_in, *kernel = w.shape
        k = int(np.prod(kernel))
        group = node.attributes.get("group")
        if group is not None and group.value != 1:
            return {"status": "declined", "reason": f"already grouped (group={group.value})"}
        if k == 1:
            return {"status": "declined", "reason": "1x1 conv: nothing to factorize"}
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        if bias is not None and bias.const_value is None:
            return {"status": "declined", "reason": "bias is not a constant"}
        x = _input_activation(node, activations, graph_inputs)
        if x is None:
            return {"status": "declined", "reason": "its input activation could not be observed"}
        dense = macs_per_pixel(c_in, c_out, k, None)
        # m must save MACs: m * (K + C_out) < C_out * K; more than min(C_out, K) is never needed (exact).
        saving = [m for m in range(1, min(c_out, k) + 1) if macs_per_pixel(c_in, c_out, k, m) < dense]
        tried = [self.multiplier] if self.multiplier else saving
        if self.multiplier and self.multiplier not in saving:
            return {"status": "declined", "multiplier": self.multiplier, "macs_before": dense,
                    "reason": f"multiplier {self.multiplier} does not reduce MACs "
                              f"({macs_per_pixel(c_in, c_out, k, self.multiplier):,} vs {dense:,} per pixel)"}
        if not tried:
            return {"status": "declined", "reason": f"no multiplier reduces MACs for C_out={c_out}, K={k}"}
        attrs = {name: a.value for name, a in node.attributes.items()}
        b = bias.const_value.numpy() if bias is not None else None
        best: tuple[float, Factorization] | None = None
        for m in tried:
            f = factorize(w, m)
            err = output_error(x, w, b, attrs, f)
            if best is None or err < best[0]:
                best = (err, f)
            if err <= self.tol:
                break
        err, f = best
        out_pixels = _pixels(node)
        figures = {"multiplier": f.multiplier, "error": round(err, 6), "weight_error": round(f.weight_error, 6),
                   "macs_before": dense * out_pixels,
                   "macs_after": macs_per_pixel(c_in, c_out, k, f.multiplier) * out_pixels}
        if err > self.tol:
            return {"status": "declined", **figures,
                    "reason": f"output error {err:.3g} > tol {self.tol:g} at multiplier {f.multiplier} "
                              f"(the largest that still saves MACs is {max(saving)})"}
        _rewrite(model, node, f, attrs, c_in)
        return {"status": "rewritten", **figures}


def _convs(model: ir.Model) -> list[ir.Node]:
    return [n for n in model.graph if n.op_type == "Conv" and weight_of(n) is not None]


def _pixels(node: ir.Node) -> int:
    shape = node.outputs[0].shape
    dims = [d for d in (shape or [])[2:]]
    return int(np.prod(dims)) if dims and all(isinstance(d, int) for d in dims) else 1


def _input_activation(node: ir.Node, activations: dict, graph_inputs: dict) -> np.ndarray | None:
    value = node.inputs[0]
    if value.name in graph_inputs:
        return graph_inputs[value.name]
    producer = value.producer()
    if producer is None or producer.outputs[0] is not value:
        return None
    return activations.get(producer.name)


def _rewrite(model: ir.Model, node: ir.Node, f: Factorization, attrs: dict, c_in: int) -> None:
    """Conv -> Conv(group=C_in) -> Conv 1x1; the pointwise conv takes the original's name and output name."""
    graph = model.graph
    dw_w = ir.Value(name=f"{node.name}_depthwise.weight", const_value=ir.tensor(f.depthwise))
    pw_w = ir.Value(name=f"{node.name}_pointwise.weight", const_value=ir.tensor(f.pointwise))
    for v in (dw_w, pw_w):
        v.shape = ir.Shape(v.const_value.shape)
        v.type = ir.TensorType(ir.DataType.FLOAT)
        graph.register_initializer(v)
    dw_attrs = {**attrs, "group": c_in, "kernel_shape": list(f.depthwise.shape[2:])}
    dw = ir.node("Conv", [node.inputs[0], dw_w], dw_attrs, name=f"{node.name}_depthwise")
    bias = [node.inputs[2]] if len(node.inputs) > 2 else []
    pw = ir.node("Conv", [dw.outputs[0], pw_w, *bias], {"kernel_shape": [1] * (f.depthwise.ndim - 2)})
    dw.outputs[0].name = f"{node.name}_depthwise_out"
    graph.insert_before(node, [dw, pw])
    old = node.outputs[0]
    name = old.name
    ir.convenience.replace_all_uses_with(old, pw.outputs[0], replace_graph_outputs=True)  # a conv may be the output
    original_name = node.name
    old_weight = node.inputs[1]
    graph.remove(node, safe=True)
    if not old_weight.uses() and old_weight.name in graph.initializers:
        del graph.initializers[old_weight.name]
    pw.name = original_name
    pw.outputs[0].name = name
    pw.outputs[0].type = old.type
    pw.outputs[0].shape = old.shape

