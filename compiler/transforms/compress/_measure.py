"""What a compression pass reports: size figures of a graph and its fidelity to the graph it started from."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir

from accelc.analysis import analyze
from accelc.metrics import compare, is_classifier, top1_agreement
from accelc.passes import PassContext

FIDELITY_SAMPLES = 32  # seeded N(0,1) inputs without data (as many as the fpga lowering observes ranges on)
# Calibration rows a pass is measured on: its fidelity budget (_budget) is a fraction of samples, and 32 resolve
# top-1 agreement only in steps of 0.031 (a standard error of 0.05 at 0.9); 128 halve that at a few ms per pass on
# small models.
FIDELITY_CALIBRATION_SAMPLES = 128


def size_figures(model: ir.Model) -> dict:
    """Parameters and MACs per sample; `nonzero_*` count only nonzero weights (what sparsity can save)."""
    params = macs = nz_params = nz_macs = 0
    for node, info in zip(model.graph, analyze(model)):
        params += info.params
        macs += info.macs
        nz = _nonzero_params(node)
        nz_params += nz
        w = weight_of(node)
        density = (np.count_nonzero(w) / w.size) if w is not None and w.size else 1.0
        nz_macs += int(round(info.macs * density))
    return {"params": params, "nonzero_params": nz_params, "macs": macs, "nonzero_macs": nz_macs}


def weight_of(node: ir.Node) -> np.ndarray | None:
    """The constant weight of a Conv/Gemm/MatMul node, or None."""
    if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.inputs) < 2:
        return None
    w = node.inputs[1]
    return w.const_value.numpy() if w is not None and w.const_value is not None else None


def _nonzero_params(node: ir.Node) -> int:
    return sum(int(np.count_nonzero(v.const_value.numpy())) for v in node.inputs
               if v is not None and v.const_value is not None)


def fidelity_inputs(model: onnx.ModelProto, context: PassContext) -> list[np.ndarray]:
    """The pass's calibration data, or seeded N(0,1) inputs when the user gave none."""
    if context.calibration is not None:
        return [np.asarray(context.calibration, dtype=np.float32)[:FIDELITY_CALIBRATION_SAMPLES]]
    rng = np.random.default_rng(context.seed)
    shapes = [[d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in model.graph.input]
    return [rng.standard_normal((FIDELITY_SAMPLES, *s[1:])).astype(np.float32) for s in shapes]


def fidelity(before: onnx.ModelProto, after: ir.Model, context: PassContext) -> dict:
    """Every output of `after` vs `before` on the same inputs (fidelity_inputs); see compare_outputs."""
    from accelc.reference import Reference

    x = fidelity_inputs(before, context)
    refs = Reference(before).run(x)
    outs = Reference(ir.to_proto(after)).run(x)
    return compare_outputs(refs, outs, [o.name for o in before.graph.output], context)


def compare_outputs(refs: list[np.ndarray], outs: list[np.ndarray], names: list[str], context: PassContext) -> dict:
    """The first output's max abs error, RMSE, cosine, RMSE relative to its spread (rel_rmse) and, for a classifier,
    top-1 agreement; a model with several outputs also gets {"outputs": {name: {rel_rmse[, top1_agreement]}}}."""
    max_err, rmse, cosine = compare(refs[0], outs[0])
    result = {"data": "calibration" if context.calibration is not None else "random", "samples": len(refs[0]),
              "max_abs_err": round(max_err, 6), "rmse": round(rmse, 6), "cosine": round(cosine, 6)}
    per_output = {name: _output_figures(ref, out) for name, ref, out in zip(names, refs, outs)}
    result.update(per_output[names[0]])
    if len(per_output) > 1:
        result["outputs"] = per_output
    return result


def _output_figures(ref: np.ndarray, out: np.ndarray) -> dict:
    rmse = compare(ref, out)[1]
    figures = {"rel_rmse": round(rmse / spread(ref), 6)}
    if is_classifier(ref):
        figures["top1_agreement"] = round(top1_agreement(ref, out), 4)
    return figures


def spread(y: np.ndarray) -> float:
    """What an output's error is measured against: its standard deviation over every element (a constant output:
    its RMS; all zeros: 1), so that no all-zero or constant artifact is near a varying output."""
    y = np.asarray(y, dtype=np.float64)
    if not y.size:
        return 1.0
    return float(np.std(y)) or float(np.sqrt(np.mean(y**2))) or 1.0
