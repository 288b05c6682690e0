"""Exporter clean-up: ONNX Runtime's basic graph optimizer on graphs with layout Transposes.

Keras 3's export (torch backend) and tf2onnx write channels-last graphs: a Transpose around every Conv and pool,
no-op float Casts, Flatten as Shape -> Gather -> Unsqueeze -> Concat -> Reshape, a Conv bias as a separate Add.
ORT's level-1 optimizer (graph_optimization_level=ORT_ENABLE_BASIC, its output saved with
optimized_model_filepath) rewrites exactly that, exactly: it pushes Transposes through elementwise ops and
cancels them, removes no-op Casts, folds what is constant, fuses Conv + Add and MatMul + Add. On the seed's Keras
CNN it leaves Transpose -> Conv -> Relu -> MaxPool -> Transpose -> Reshape[0,-1] -> Gemm -> Relu -> Gemm -> Softmax.

Where it could change what a graph computes, the pass declines and says why: quantized graphs (QDQ, QONNX: ORT's
QDQ propagation moves quantizers and drops Relus before them), custom domains and functions. ConstantSharing is
switched off (it would share one initializer between layers whose weights later passes edit). The result must
use standard-domain ops only and match ONNX Runtime on the graph before (seeded inputs), else the graph is kept.
ORT keeps node names; the nodes it creates have names derived from the ones they replace.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import DEFAULT_DOMAINS, op_counts

QUANTIZED = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
             "MatMulInteger", "ConvInteger", "QLinearAdd", "QLinearMul"}
# ORT optimizers that are not wanted even where they are exact.
DISABLED = ["ConstantSharing"]
CHECK_SAMPLES, CHECK_SEED, CHECK_RTOL = 2, 0, 1e-4


@register
class ExporterCleanup(AccelcPass):
    name = "exporter-cleanup"

    def call(self, model: ir.Model) -> PassResult:
        before = op_counts(model)
        if not before.get("Transpose"):
            return PassResult(model, False)
        reason = _declines(model)
        if reason:
            return PassResult(model, False, warnings=[f"exporter clean-up skipped: {reason}"])
        proto = ir.to_proto(model)
        try:
            optimized = optimize(proto)
        except Exception as e:  # ORT refuses the graph: the later passes and the target's check see it as it is
            return PassResult(model, False, warnings=[f"exporter clean-up skipped: ONNX Runtime could not optimize "
                                                      f"the graph ({type(e).__name__})"])
        problem = _differs(proto, optimized)
        if problem:
            return PassResult(model, False, warnings=[f"exporter clean-up not applied: {problem}"])
        new = ir.from_proto(optimized)
        new.graph.opset_imports.clear()
        new.graph.opset_imports.update(model.graph.opset_imports)  # ORT lists every domain it knows
        model.graph = new.graph
        after = op_counts(model)
        removed = {op: before[op] - after.get(op, 0) for op in ("Transpose", "Cast", "Shape") if op in before}
        return PassResult(model, True, stats={"nodes_before": sum(before.values()), "nodes_after": sum(after.values()),
                                              "removed": removed})


def optimize(proto: onnx.ModelProto) -> onnx.ModelProto:
    """ORT's basic (level-1) optimizations of the graph, as ORT saves it."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="accelc-ort-") as tmp:
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"],
                             disabled_optimizers=DISABLED)
        return onnx.load(opts.optimized_model_filepath)


def _declines(model: ir.Model) -> str | None:
    if model.functions:
        return "the model has functions"
    for node in model.graph:
        if node.domain not in DEFAULT_DOMAINS:
            return f"node '{node.name}' is in domain '{node.domain}'"
        if node.op_type in QUANTIZED:
            return f"a quantized graph ({node.op_type} '{node.name}'): ORT would move its quantizers"
        if any(a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS) for a in node.attributes.values()):
            return f"node '{node.name}' has subgraphs"
    for value in model.graph.inputs:
        if value.dtype != ir.DataType.FLOAT or value.shape is None:
            return f"input '{value.name}' is not a float tensor of known rank"
        if any(not isinstance(d, int) for d in list(value.shape)[1:]):
            return f"input '{value.name}' has unknown dims past the batch"
    return None


def _differs(before: onnx.ModelProto, after: onnx.ModelProto) -> str | None:
    """Why the optimized graph is not taken: a non-standard op, or other numbers than the graph before."""
    custom = next((n for n in after.graph.node if n.domain not in DEFAULT_DOMAINS), None)
    if custom is not None:
        return f"ONNX Runtime wrote a {custom.domain} {custom.op_type} node"
    rng = np.random.default_rng(CHECK_SEED)
    feeds = {}
    for value in before.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else CHECK_SAMPLES for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = rng.standard_normal(dims).astype(np.float32)
    want, got = _run(before, feeds), _run(after, feeds)
    for name, w, g in zip([o.name for o in before.graph.output], want, got, strict=True):
        tol = CHECK_RTOL * max(1.0, float(np.max(np.abs(w))) if w.size else 1.0)
        if w.shape != g.shape or not np.allclose(w, g, rtol=0, atol=tol, equal_nan=True):
            return f"output '{name}' differs from the graph before (ONNX Runtime, seeded inputs)"
    return None


def _run(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)
