"""hls4ml configuration and project writing: precision per layer, io type, strategy, reuse factor."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from accelc.errors import AccelcError
from accelc.fpga_rules import LARGE_LAYER_MULTS, needs_resource  # noqa: F401 - re-exported
from accelc.hls.precision import PrecisionPolicy, accum_type, fixed, result_type, weight_type
from accelc.hls.prepare import Prepared
from accelc.hls.quantized_import import has_quantization, quantized_layer_precisions

log = logging.getLogger("accelc")

BACKENDS = {"vitis": "Vitis", "vivado": "Vivado", "quartus": "Quartus", "oneapi": "oneAPI", "catapult": "Catapult"}
PROJECT_NAME = "myproject"
# hls4ml's oneAPI backend writes a CMake project built with Intel's icpx/SYCL, not the g++ build_lib.sh every
# other backend writes: accelc cannot build its C simulation, so cannot check an artifact for it.
NOT_EMULATED = {"oneapi": "hls4ml's oneAPI projects build with CMake and Intel's oneAPI compiler (icpx), which accelc "
                          "does not drive; accelc checks every artifact in C simulation, so it cannot compile for it"}


def backend_problem(backend: str | None) -> str | None:
    """Why accelc cannot produce a checked artifact for this fpga backend (None: it can), known before any work."""
    name = str(backend or "vitis").lower()
    if name not in BACKENDS:
        return f"unknown fpga backend '{backend}'; choose one of: {', '.join(BACKENDS)}"
    if name in NOT_EMULATED:
        usable = ", ".join(b for b in BACKENDS if b not in NOT_EMULATED)
        return f"fpga backend '{name}': {NOT_EMULATED[name]}; use one of: {usable}"
    return None


@dataclass
class FpgaOptions:
    backend: str = "vitis"
    part: str | None = None
    clock_period: float = 5.0
    io_type: str | None = None  # "parallel" | "stream"; None = chosen from the model
    strategy: str | None = None  # "latency" | "resource"; None = chosen per layer size
    reuse_factor: int | None = None
    precision: str | None = None  # a blanket hls4ml type; None = per-layer types from ranges
    policy: PrecisionPolicy = field(default_factory=PrecisionPolicy)
    layer_widths: dict[str, int] = field(default_factory=dict)  # canonical node -> width (quantize:auto)

    def policy_for(self, node: str | None) -> PrecisionPolicy:
        width = self.layer_widths.get(node or "")
        return replace(self.policy, width=width, weight_width=width) if width else self.policy

    @classmethod
    def from_dict(cls, d: dict) -> FpgaOptions:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "policy"}
        for key, allowed in (("io_type", ("parallel", "stream")), ("strategy", ("latency", "resource")),
                             ("backend", tuple(BACKENDS))):
            if known.get(key) is not None and str(known[key]).lower() not in allowed:
                raise AccelcError(f"fpga option {key}={known[key]!r} is not one of: {', '.join(allowed)}")
            if known.get(key) is not None:
                known[key] = str(known[key]).lower()
        policy = PrecisionPolicy(**d["policy"]) if isinstance(d.get("policy"), dict) else PrecisionPolicy()
        return cls(**known, policy=policy)


def _layer_mults(model: onnx.ModelProto) -> dict[str, int]:
    """Nonzero multiplications per Conv/MatMul node (one inference): the multipliers a Latency-strategy
    layer would need, since HLS drops the constant-zero ones (pruned weights)."""
    inits = {i.name: i for i in model.graph.initializer}
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(model.graph.value_info) + list(model.graph.output)}
    mults = {}
    for node in model.graph.node:
        w = inits.get(node.input[1]) if len(node.input) > 1 else None
        if w is None:
            continue
        nonzero = int(np.count_nonzero(numpy_helper.to_array(w)))
        if node.op_type == "MatMul":
            mults[node.name] = nonzero
        elif node.op_type == "Conv":
            out = shapes.get(node.output[0], [])
            spatial = int(np.prod(out[1:-1])) if len(out) > 2 else 1  # channels-last: N, H, W, C
            mults[node.name] = nonzero * spatial
    return mults


def _max_abs_init(inits: dict[str, np.ndarray], name: str) -> float | None:
    return float(np.max(np.abs(inits[name]))) if name in inits and inits[name].size else None


def build_config(prepared: Prepared, ranges: dict[str, float], input_ranges: dict[str, float],
                 opts: FpgaOptions) -> tuple[dict, str]:
    """hls4ml config (granularity 'name') plus the io type. `ranges`: canonical node name -> max |output|."""
    import hls4ml

    model = prepared.model
    backend = BACKENDS[opts.backend]
    blanket = opts.precision or "fixed<16,6>"
    with contextlib.redirect_stdout(io.StringIO()):  # hls4ml prints its parse as it goes
        cfg = hls4ml.utils.config.config_from_onnx_model(model, granularity="name", backend=backend,
                                                         default_precision=blanket)
    mults = _layer_mults(model)
    has_conv = any(n.op_type == "Conv" for n in model.graph.node)
    io_type = {"parallel": "io_parallel", "stream": "io_stream"}.get(opts.io_type or "",
                                                                       "io_stream" if has_conv else "io_parallel")
    cfg["Model"]["ReuseFactor"] = opts.reuse_factor or 1
    cfg["Model"]["Strategy"] = (opts.strategy or "latency").capitalize()
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {n.name: n for n in model.graph.node}
    graph_inputs = {i.name for i in model.graph.input}
    quantized = quantized_layer_precisions(model)  # an already-quantized model's own types
    for name, layer_cfg in cfg["LayerName"].items():
        layer_cfg["Trace"] = True
        if opts.reuse_factor and "ReuseFactor" in layer_cfg:
            # hls4ml's per-layer config (granularity 'name') carries ReuseFactor 1, which beats the model's
            layer_cfg["ReuseFactor"] = opts.reuse_factor
        if opts.strategy is None and needs_resource(mults.get(name, 0)):
            layer_cfg["Strategy"] = "Resource"
        if name in quantized:
            layer_cfg.setdefault("Precision", {}).update(quantized[name])
            continue
        if opts.precision is not None:
            continue  # the user asked for one blanket type
        prec = layer_cfg.setdefault("Precision", {})
        if name in graph_inputs:
            prec["result"] = result_type(max(input_ranges.values(), default=1.0), opts.policy)
            continue
        node = producers.get(name)
        if node is None:
            continue  # constants: their own type is set from the consuming layer's weight type
        origin = prepared.node_names.get(name)
        policy = opts.policy_for(origin)
        if origin in ranges:
            prec["result"] = result_type(ranges[origin], policy)
            if "accum" in prec:
                prec["accum"] = accum_type(ranges[origin], policy)
        elif node.op_type == "Transpose" and input_ranges:
            prec["result"] = result_type(max(input_ranges.values()), policy)
        if node.op_type in ("Conv", "MatMul") and len(node.input) > 1:
            w = _max_abs_init(inits, node.input[1])
            if w is not None:
                prec["weight"] = weight_type(w, policy)
            b_name = node.input[2] if len(node.input) > 2 else _bias_of(model, node)
            b = _max_abs_init(inits, b_name) if b_name else None
            prec["bias"] = weight_type(b if b is not None else 0.0, policy)
    # Fallback for anything left "auto": a safe wide type rather than hls4ml's inferred one.
    cfg["Model"]["Precision"]["default"] = blanket if opts.precision else fixed(opts.policy.width + 6, 12)
    return cfg, io_type


def _bias_of(model: onnx.ModelProto, matmul: onnx.NodeProto) -> str | None:
    """The constant added right after a MatMul (hls4ml merges the two into one Dense)."""
    for node in model.graph.node:
        if node.op_type == "Add" and matmul.output[0] in node.input:
            other = [t for t in node.input if t != matmul.output[0]]
            return other[0] if other else None
    return None


def write_project(prepared: Prepared, cfg: dict, io_type: str, opts: FpgaOptions, out_dir: Path):
    """Convert with hls4ml and write the complete HLS project into out_dir; returns the hls4ml ModelGraph."""
    import hls4ml

    from accelc.hls import hls4ml_fixes

    hls4ml_fixes.install()
    kwargs = {"output_dir": str(out_dir), "project_name": PROJECT_NAME, "io_type": io_type,
              "backend": BACKENDS[opts.backend], "hls_config": cfg}
    if opts.part:
        kwargs["part"] = opts.part
    if opts.clock_period:
        kwargs["clock_period"] = opts.clock_period
    with contextlib.redirect_stdout(io.StringIO()) as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hls_model = hls4ml.converters.convert_from_onnx_model(prepared.model, **kwargs)
        if has_quantization(prepared.model.graph):
            exact_relu_types(hls_model)
        if opts.precision is None:  # accelc chose the types; a user's blanket type is left as asked
            exact_accumulators(hls_model)
        # Tracing is a top-level hls4ml setting (not HLSConfig's): one build then serves predict and trace.
        hls_model.config.trace_output = True
        hls_model.write()
    log.debug("hls4ml: %s", out.getvalue()[-2000:])
    return hls_model


EXACT_ACCUM_MAX_BITS = 48  # a DSP48 slice accumulates 48 bits natively: wider, keep hls4ml's rounding accumulator


def exact_accumulators(hls_model) -> list[str]:
    """Every Dense/Conv accumulator keeps all fraction bits of its products (input frac + weight frac), integer
    bits as sized: no product is rounded on its way into the sum, so the sum is exact up to the final cast (and
    the numpy engine computes the layer as one exact matrix product instead of one rounding per term). Widened
    only, never narrowed, and not beyond EXACT_ACCUM_MAX_BITS. Returns the layers changed."""
    from hls4ml.backends.fpga.fpga_types import ACTypeConverter, APTypeConverter
    from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType

    converters = {"AP": APTypeConverter(), "AC": ACTypeConverter()}
    changed = []
    for layer in hls_model.get_layers():
        acc = layer.get_attr("accum_t", None)
        w = layer.weights.get("weight")
        if acc is None or w is None or not isinstance(acc.precision, (FixedPrecisionType, IntegerPrecisionType)):
            continue
        x = layer.get_input_variable().type.precision
        wp = w.type.precision
        if not all(isinstance(p, (FixedPrecisionType, IntegerPrecisionType)) for p in (x, wp)):
            continue  # xnor/binary or float operands: hls4ml's own arithmetic
        frac = (x.width - x.integer) + (wp.width - wp.integer)
        old = acc.precision
        if frac <= old.width - old.integer or old.integer + frac > EXACT_ACCUM_MAX_BITS:
            continue
        converter = converters.get(type(old).__name__[:2])
        if converter is None:
            continue
        wider = FixedPrecisionType(old.integer + frac, old.integer, signed=True, rounding_mode="TRN",
                                   saturation_mode=str(getattr(old, "saturation_mode", "WRAP")).split(".")[-1])
        acc.precision = converter.convert(wider)
        changed.append(layer.name)
    return changed


def exact_relu_types(hls_model) -> list[str]:
    """In a quantized model, each ReLU takes its input's fixed-point type: ReLU is exact in it, while the type
    accelc sizes from the observed range (18 bits) would round the exact integer-grid sum of a quantized Dense/Conv
    before the next Quant rounds it again — double rounding, which moves values sitting just below a grid point
    of a FLOOR quantizer (or beside a tie of a ROUND one) one step. Returns the layers changed."""
    from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType

    changed = []
    for layer in hls_model.get_layers():
        if layer.class_name not in ("Activation", "ReLU") or str(layer.get_attr("activation", "")).lower() != "relu":
            continue
        src = layer.get_input_variable().type.precision
        out = layer.get_output_variable().type
        if isinstance(src, (FixedPrecisionType, IntegerPrecisionType)) and str(out.precision) != str(src):
            out.precision = src
            changed.append(layer.name)
    return changed


def layer_origin(layer_name: str, node_names: dict[str, str]) -> str | None:
    """The canonical ONNX node an hls4ml layer came from (hls4ml prefixes e.g. 'Conv2D_', 'Dense_')."""
    if layer_name in node_names:
        return node_names[layer_name]
    for safe in sorted(node_names, key=len, reverse=True):
        if re.fullmatch(rf"[A-Za-z0-9]+_{re.escape(safe)}", layer_name):
            return node_names[safe]
    return None
