"""Per-layer fixed-point widths for fpga, searched on calibration data.

Proposal: each node's output is rounded and saturated to fixed<W, I> (I from its observed range plus headroom,
as accelc.hls.precision does), each weight to fixed<W, I_w>, in an ONNX graph ONNX Runtime runs in
milliseconds; the search lowers one layer's width at a time while the result stays within budget. That only
approximates hls4ml's arithmetic, so where the target can compute the model at given widths for real
(PassContext.emulate_widths: fpga's lowering run by the bit-exact numpy engine) `engine_search` takes the
proposal as its starting point and decides every layer's width on the target's own numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from accelc.fpga_rules import integer_bits  # one rule for the search and the lowering
from accelc.passes import PassContext
from accelc.reference import Reference
from accelc.transforms.compress._measure import compare_outputs, fidelity_inputs

WEIGHTED = ("Conv", "Gemm", "MatMul")
CANDIDATE_WIDTHS = (16, 14, 12, 10, 8, 7, 6, 5, 4)
START_WIDTH = 18  # accelc's default fpga width


def _quantize(x: np.ndarray, width: int, int_bits: int) -> np.ndarray:
    frac = width - int_bits
    lo, hi = -(2.0 ** (width - 1)), 2.0 ** (width - 1) - 1
    return (np.clip(np.round(x * 2.0**frac), lo, hi) / 2.0**frac).astype(np.float32)


def fake_quantized(model: onnx.ModelProto, widths: dict[str, int], ranges: dict[str, float],
                   headroom: int = 1) -> onnx.ModelProto:
    """A copy of `model` whose node outputs and weights are rounded/saturated to their node's width."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {i.name: i for i in m.graph.initializer}
    new_nodes = []
    for node in m.graph.node:
        width = widths.get(node.name)
        new_nodes.append(node)
        if width is None or not node.output or not node.output[0]:
            continue
        if node.op_type in WEIGHTED and len(node.input) > 1 and node.input[1] in inits:
            for name in node.input[1:3]:
                if name in inits:
                    w = numpy_helper.to_array(inits[name])
                    q = _quantize(w, width, integer_bits(float(np.max(np.abs(w))) if w.size else 0.0, 0))
                    inits[name].CopyFrom(numpy_helper.from_array(q, name))
        out = node.output[0]
        raw = f"{out}__float"
        node.output[0] = raw
        frac = width - integer_bits(ranges.get(node.name, 0.0), headroom)
        scale, inv = f"{out}__scale", f"{out}__inv"
        lo, hi = f"{out}__lo", f"{out}__hi"
        m.graph.initializer.extend([
            numpy_helper.from_array(np.array(2.0**frac, np.float32), scale),
            numpy_helper.from_array(np.array(2.0**-frac, np.float32), inv),
            numpy_helper.from_array(np.array(-(2.0 ** (width - 1)), np.float32), lo),
            numpy_helper.from_array(np.array(2.0 ** (width - 1) - 1, np.float32), hi),
        ])
        new_nodes += [helper.make_node("Mul", [raw, scale], [f"{out}__s"]),
                      helper.make_node("Round", [f"{out}__s"], [f"{out}__r"]),
                      helper.make_node("Clip", [f"{out}__r", lo, hi], [f"{out}__c"]),
                      helper.make_node("Mul", [f"{out}__c", inv], [out])]
    del m.graph.node[:]
    m.graph.node.extend(new_nodes)
    return m


def layer_widths(model: onnx.ModelProto, weighted: dict[str, int], default: int) -> dict[str, int]:
    """Every node's width: a weighted layer's own; any other node inherits its first input's producer's."""
    producer = {t: n.name for n in model.graph.node for t in n.output}
    widths: dict[str, int] = {}
    for node in model.graph.node:
        if node.name in weighted:
            widths[node.name] = weighted[node.name]
        else:
            src = producer.get(node.input[0]) if node.input else None
            widths[node.name] = widths.get(src, default) if src else default
    return widths


def search(model: onnx.ModelProto, x: np.ndarray, accept: Callable[[np.ndarray, np.ndarray], bool],
           candidates: Sequence[int] = CANDIDATE_WIDTHS, headroom: int = 1) -> tuple[dict[str, int], int]:
    """Greedy, layer by layer in graph order: each weighted layer takes the narrowest candidate width with
    which `accept(reference, fake-quantized output)` still holds. Returns (weighted layer widths, trials)."""
    ref_model = Reference(model)
    ref = ref_model.run([x])[0]
    ranges = {k: float(np.max(np.abs(v))) if v.size else 0.0 for k, v in ref_model.run_all([x]).items()}
    layers = [n.name for n in model.graph.node if n.op_type in WEIGHTED]
    chosen = dict.fromkeys(layers, START_WIDTH)
    trials = 0
    for layer in layers:
        for width in candidates:
            trial = {**chosen, layer: width}
            quantized = fake_quantized(model, layer_widths(model, trial, START_WIDTH), ranges, headroom)
            out = Reference(quantized).run([x])[0]
            trials += 1
            if not accept(ref, out):
                break
            chosen = trial
    return chosen, trials


def bit_ops(model: onnx.ModelProto, widths: dict[str, int], macs: dict[str, int], default: int) -> int:
    """Sum over weighted layers of MACs x weight bits x input activation bits."""
    producer = {t: n.name for n in model.graph.node for t in n.output}
    total = 0
    for node in model.graph.node:
        if node.name in macs:
            src = producer.get(node.input[0])
            total += macs[node.name] * widths.get(node.name, default) * (widths.get(src, default) if src else default)
    return total


def estimated_fidelity(model: onnx.ModelProto, widths: dict[str, int], context: PassContext) -> dict:
    """The fidelity (_measure.compare_outputs) of `model` with every node at its width, estimated with the
    fake-quantized graph: ranges observed as the fpga lowering observes them (all calibration rows, or the same
    seeded N(0,1) inputs), outputs compared on the pass's fidelity inputs."""
    x = fidelity_inputs(model, context)
    ref_model = Reference(model)
    observed = [np.asarray(context.calibration, dtype=np.float32)] if context.calibration is not None else x
    ranges = {k: float(np.max(np.abs(v))) if v.size else 0.0 for k, v in ref_model.run_all(observed).items()}
    outs = Reference(fake_quantized(model, widths, ranges)).run(x)
    result = compare_outputs(ref_model.run(x), outs, [o.name for o in model.graph.output], context)
    return {**result, "estimate": "fake-quantized in float, approximating hls4ml's arithmetic"}


def engine_search(model: onnx.ModelProto, x: np.ndarray, accept: Callable[[np.ndarray, np.ndarray], bool],
                  proposal: dict[str, int], emulate: Callable, candidates: Sequence[int] = CANDIDATE_WIDTHS
                  ) -> tuple[dict[str, int], int]:
    """Greedy as `search`, layer by layer in graph order, but each trial is the target's real arithmetic
    (emulate(model, widths per node, [x])): a layer starts at its proposed width, goes one candidate narrower
    while accepted, or wider until accepted (START_WIDTH at most). Returns (weighted layer widths, trials)."""
    ref = Reference(model).run([x])[0]
    ladder = sorted({*candidates, START_WIDTH})  # narrow -> wide
    chosen = dict.fromkeys(proposal, START_WIDTH)
    trials = 0

    def ok(weighted: dict[str, int]) -> bool:
        nonlocal trials
        trials += 1
        out = emulate(model, layer_widths(model, weighted, START_WIDTH), [x])[0]
        return accept(ref, np.asarray(out, dtype=np.float32).reshape(ref.shape))

    for layer, width in proposal.items():
        i = ladder.index(width) if width in ladder else len(ladder) - 1
        if ok({**chosen, layer: ladder[i]}):
            while i > 0 and ok({**chosen, layer: ladder[i - 1]}):
                i -= 1
        else:
            i += 1
            while i < len(ladder) - 1 and not ok({**chosen, layer: ladder[i]}):
                i += 1
        chosen[layer] = ladder[min(i, len(ladder) - 1)]
    return chosen, trials


def emulated_fidelity(model: onnx.ModelProto, widths: dict[str, int], context: PassContext) -> dict:
    """The fidelity of `model` at `widths` as the target computes it (context.emulate_widths), on the pass's
    fidelity inputs: what the C simulation of the compiled artifact gives, bit for bit."""
    x = fidelity_inputs(model, context)
    ref = Reference(model).run(x)
    outs = context.emulate_widths(model, widths, x)
    outs = [np.asarray(o, dtype=np.float32).reshape(r.shape) for o, r in zip(outs, ref)]
    result = compare_outputs(ref, outs, [o.name for o in model.graph.output], context)
    return {**result, "estimate": None, "computed_by": "the fpga lowering run by the numpy engine (bit-exact)"}
