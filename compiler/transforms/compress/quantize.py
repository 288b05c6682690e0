"""The `quantize` pass: int8 (dynamic or static QDQ) and fp16 for ONNX Runtime; fixed-point widths for fpga.

ORT modes are measured, not assumed (../shared/MEASURED.md: dynamic int8 convolutions ran 3-5x slower
than fp32 on CPU): the pass times the new model against the float one on the target's provider in
this process and warns when it is slower. Fixed-point modes record the width; the fpga target
derives each layer's integer bits from observed ranges (accelc.hls.precision), and the pass estimates the
result with a fake-quantized graph (fixed_point_search). Every mode's fidelity is judged against the budget
(accelc.transforms.compress._budget): a warning below it, an error when strict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from accelc.errors import AccelcError, PassError
from accelc.fpga_rules import FPGA_WIDTH_KEY, FPGA_WIDTHS_KEY  # what the fpga lowering reads
from accelc.passes import NewModelPass, PassContext, PassResult, register
from accelc.transforms.compress._budget import check_budget
from accelc.transforms.compress._measure import fidelity, fidelity_inputs
from accelc.transforms.compress._select import names_option
from accelc.transforms.compress.ort_quantization import CALIBRATION_METHODS, fp16, int8_dynamic, int8_static_qdq
from accelc.transforms.rewrite import op_counts

ORT_MODES = ("int8-dynamic", "int8", "fp16", "auto-int8")
# auto-int8 tries these op-type subsets (None: every op onnxruntime.quantization handles).
AUTO_OP_SETS = (None, ("MatMul", "Gemm"), ("Conv",))
FIXED_WIDTHS = {"fixed8": 8, "fixed16": 16}
TIMING_BATCHES = (1, 64)
OUTPUT_OPS_KEPT_FLOAT = ("Softmax", "LogSoftmax")


def _fixed_width(mode: str, width: Any) -> int | None:
    if mode in FIXED_WIDTHS:
        return FIXED_WIDTHS[mode]
    if mode == "fixed" or mode.startswith("fixed:"):
        text = mode.partition(":")[2] or str(width or "")
        if not text.isdigit() or not 4 <= int(text) <= 32:
            raise PassError(f"quantize: fixed-point width must be an integer 4..32, e.g. quantize:fixed:12 "
                            f"(got {text!r})")
        return int(text)
    return None


@register
class Quantize(NewModelPass):
    """quantize:int8-dynamic | quantize:int8[,calibrate=minmax|entropy|percentile][,per_channel=true][,exclude=…]
    | quantize:fp16[,keep_io=true] | quantize:fixed8 | quantize:fixed16 | quantize:fixed:W"""

    name = "quantize"

    def __init__(self, context: PassContext | None = None, mode: str | None = None, calibrate: str = "minmax",
                 per_channel: bool = True, exclude: Any = None, keep_io: bool = True, ops: Any = None,
                 width: Any = None, min_agreement: float = 0.99, max_rel_err: float = 0.05, guard_bits: int = 1,
                 **unknown: Any) -> None:
        super().__init__(context, **unknown)
        self.mode = str(mode or "").lower()
        self.width = _fixed_width(self.mode, width)
        if self.width is None and self.mode not in (*ORT_MODES, "auto"):
            raise PassError(f"quantize: mode must be one of {', '.join(ORT_MODES)}, fixed8, fixed16, fixed:W, auto "
                            f"(got {mode!r})")
        if str(calibrate).lower() not in CALIBRATION_METHODS:
            raise PassError(f"quantize: calibrate must be one of {', '.join(CALIBRATION_METHODS)}, not {calibrate!r}")
        self.calibrate = str(calibrate).lower()
        self.per_channel = bool(per_channel)
        self.exclude = names_option(exclude)
        self.keep_io = bool(keep_io)
        self.ops = names_option(ops)
        self.min_agreement = float(min_agreement)
        self.max_rel_err = float(max_rel_err)
        self.guard_bits = int(guard_bits)
        self._check_target()

    @property
    def options(self) -> dict:
        if self.width is not None:
            return {"mode": "fixed", "width": self.width}
        if self.mode == "auto":
            return {"mode": "auto", "min_agreement": self.min_agreement, "max_rel_err": self.max_rel_err,
                    "guard_bits": self.guard_bits}
        opts: dict[str, Any] = {"mode": self.mode}
        if self.mode == "int8":
            opts.update(calibrate=self.calibrate, per_channel=self.per_channel)
        if self.mode == "int8-dynamic":
            opts["per_channel"] = self.per_channel
        if self.mode == "fp16":
            opts["keep_io"] = self.keep_io
        if self.mode == "auto-int8":
            opts.update(min_agreement=self.min_agreement, max_rel_err=self.max_rel_err)
        if self.exclude:
            opts["exclude"] = self.exclude
        if self.ops:
            opts["ops"] = self.ops
        return opts

    def _check_target(self) -> None:
        target = self.context.target
        fixed = self.width is not None or self.mode == "auto"
        if fixed and target not in (None, "fpga"):
            raise PassError(f"quantize:{self.mode} is a fixed-point width for --target fpga; for {target} use "
                            "quantize:int8 (static, QDQ), int8-dynamic or fp16")
        if not fixed and target == "fpga":
            raise PassError(f"quantize:{self.mode} is for ONNX Runtime; fpga takes fixed-point widths: "
                            "quantize:fixed8, fixed16 or fixed:W")
        if self.mode in ("int8-dynamic", "auto-int8") and target == "cuda":
            raise PassError("quantize:int8-dynamic emits integer operators (MatMulInteger/ConvInteger) that the "
                            "CUDA provider runs on the CPU; use quantize:int8 (QDQ) or quantize:fp16 for cuda")

    def call(self, model: ir.Model) -> PassResult:
        before = ir.to_proto(model)
        if self.width is not None:
            result = self._fixed(before)
        elif self.mode == "auto":
            result = self._auto_fixed(before)
        elif self.mode == "auto-int8":
            result = self._auto(before, self._excluded(before))
        else:
            result = self._ort(before)
        return check_budget(result, self.name, self.context, self._milder())

    def _milder(self) -> str:
        """What the budget's warning suggests relaxing."""
        if self.width is not None or self.mode == "auto":
            return "a wider width (quantize:fixed16, or auto with a higher min_agreement)"
        if self.mode == "fp16":
            return "float32 (fp16 cannot keep single layers float)"
        return "exclude= or ops= to keep the sensitive layers float, or quantize:fp16"

    def _fixed(self, before: onnx.ModelProto) -> PassResult:
        from accelc.transforms.compress.fixed_point_search import estimated_fidelity, layer_widths

        new = ir.from_proto(before)
        new.metadata_props[FPGA_WIDTH_KEY] = str(self.width)
        fid = estimated_fidelity(before, layer_widths(before, {}, self.width), self.context)
        agree = f", top-1 agreement {fid['top1_agreement']:.3f}" if "top1_agreement" in fid else ""
        stats = {"mode": "fixed", "width": self.width, "fidelity": fid,
                 "summary": f"fixed-point {self.width}-bit results and weights; integer bits per layer "
                            "from observed ranges (see the artifact's precision table); estimated vs float on "
                            f"{fid['samples']} {fid['data']} inputs: max abs err {fid['max_abs_err']:.3g}{agree}"}
        return PassResult(new, True, stats=stats)

    def _ort(self, before: onnx.ModelProto) -> PassResult:
        excluded = self._excluded(before)
        if self.mode == "int8-dynamic":
            after = int8_dynamic(before, self.ops or None, excluded, self.per_channel)
        elif self.mode == "int8":
            if self.context.calibration is None:
                raise PassError("quantize:int8 (static) needs calibration data: --calibration FILE.npy or "
                                "--dataset digits (API: calibration=array); it never calibrates on random data")
            after = int8_static_qdq(before, self.context.calibration, self.calibrate, self.per_channel, excluded,
                                    self.ops or None)
        else:
            after = fp16(before, self.keep_io)
        new = ir.from_proto(after)
        new.graph.sort()  # the fp16 converter appends its input Casts at the end of the node list
        stats: dict[str, Any] = {"mode": self.mode, "excluded": excluded,
                                 "size_bytes": {"before": before.ByteSize(), "after": after.ByteSize()},
                                 "ops_after": op_counts(new), "fidelity": fidelity(before, new, self.context)}
        stats["speed"], warnings = self._speed(before, after)
        stats["summary"] = _summary(stats)
        return PassResult(new, True, stats=stats, warnings=warnings)

    def _auto(self, before: onnx.ModelProto, excluded: list[str]) -> PassResult:
        """Try int8 on each op-type subset (static QDQ with calibration data, else dynamic); keep the variant
        that is faster than fp32 at every timed batch size and within the accuracy budget, or none."""
        present = {n.op_type for n in before.graph.node}
        static = self.context.calibration is not None
        candidates, best = [], None
        for ops in AUTO_OP_SETS:
            if ops is not None and not present & set(ops):
                continue
            after = (int8_static_qdq(before, self.context.calibration, self.calibrate, self.per_channel, excluded, ops)
                     if static else int8_dynamic(before, ops, excluded, self.per_channel))
            new = ir.from_proto(after)
            new.graph.sort()
            fid = fidelity(before, new, self.context)
            speed, _ = self._speed(before, after)
            worst = max((r["ratio"] for r in speed), default=float("inf"))
            accurate = self._within_budget(before, fid)
            row = {"variant": "int8 static QDQ" if static else "int8 dynamic", "ops": list(ops) if ops else "all",
                   "worst_ratio": worst, "speed": speed, "fidelity": fid, "within_budget": accurate}
            candidates.append(row)
            if accurate and worst < 1.0 and (best is None or worst < best[0]["worst_ratio"]):
                best = (row, new, after)
        stats: dict[str, Any] = {"mode": "auto-int8", "excluded": excluded, "candidates": candidates}
        if best is None:
            stats["chosen"] = None
            stats["summary"] = (f"auto-int8: no int8 variant was both faster than fp32 and within the budget "
                                f"({len(candidates)} tried); the model stays float")
            return PassResult(ir.from_proto(before), False, stats=stats, warnings=[stats["summary"]])
        row, new, after = best
        stats.update(chosen={"variant": row["variant"], "ops": row["ops"]}, fidelity=row["fidelity"],
                     speed=row["speed"], size_bytes={"before": before.ByteSize(), "after": after.ByteSize()})
        stats["summary"] = f"auto-int8 chose {row['variant']} on {row['ops']} ops; " + _summary({**stats,
                                                                                               "mode": "int8"})
        return PassResult(new, True, stats=stats)

    def _auto_fixed(self, before: onnx.ModelProto) -> PassResult:
        """Per-layer fpga widths: the narrowest each weighted layer can take while the calibration outputs
        of the fake-quantized graph stay within the budget (see accelc.transforms.compress.fixed_point_search)."""
        import json

        from accelc.analysis import node_macs
        from accelc.transforms.compress.fixed_point_search import (
            START_WIDTH,
            bit_ops,
            emulated_fidelity,
            engine_search,
            estimated_fidelity,
            layer_widths,
            search,
        )

        if self.context.calibration is None:
            raise PassError("quantize:auto searches widths on calibration data: --calibration FILE.npy or "
                            "--dataset digits (API: calibration=array)")
        x = np.asarray(self.context.calibration, dtype=np.float32)

        def accept(ref: np.ndarray, out: np.ndarray) -> bool:
            if ref.ndim == 2 and ref.shape[1] > 1:
                return float(np.mean(ref.argmax(1) == out.argmax(1))) >= self.min_agreement
            scale = float(np.sqrt(np.mean(np.square(ref)))) or 1.0
            return float(np.sqrt(np.mean(np.square(out - ref)))) / scale <= self.max_rel_err

        searched, trials = search(before, x, accept)
        on_engine, engine_note = False, None
        if self.context.emulate_widths is not None:
            try:
                searched, engine_trials = engine_search(before, x, accept, searched, self.context.emulate_widths)
                trials += engine_trials
                on_engine = True
            except AccelcError as e:  # the engine does not implement a layer of this model
                engine_note = f"numpy engine unavailable ({e}): widths from the fake-quantized graph"
        # Calibration is not test data (and the fake-quantized graph only approximates hls4ml's arithmetic): one
        # guard bit per layer keeps the budget honest on unseen inputs.
        chosen = {k: min(v + self.guard_bits, START_WIDTH) for k, v in searched.items()}
        widths = layer_widths(before, chosen, START_WIDTH)
        new = ir.from_proto(before)
        new.metadata_props[FPGA_WIDTHS_KEY] = json.dumps(widths, sort_keys=True)
        macs = {n.name: node_macs(n) for n in new.graph if n.name in chosen}
        ops_before = bit_ops(before, {}, macs, START_WIDTH)
        ops_after = bit_ops(before, widths, macs, START_WIDTH)
        stats = {"mode": "auto", "widths": chosen, "searched_widths": searched, "guard_bits": self.guard_bits,
                 "trials": trials, "samples": len(x),
                 "bit_ops": {"before": ops_before, "after": ops_after},
                 "decided_by": "the fpga lowering run by the bit-exact numpy engine" if on_engine
                 else "a fake-quantized float graph (approximates hls4ml's arithmetic)",
                 "fidelity": emulated_fidelity(before, widths, self.context) if on_engine
                 else estimated_fidelity(before, widths, self.context)}
        if engine_note:
            stats["note"] = engine_note
        stats["summary"] = (f"widths {', '.join(f'{k}={v}' for k, v in chosen.items())} ({trials} trials on "
                            f"{len(x)} calibration inputs); bit-ops {ops_before:,} -> {ops_after:,}")
        return PassResult(new, True, stats=stats)

    def _within_budget(self, before: onnx.ModelProto, fid: dict) -> bool:
        if "top1_agreement" in fid:
            return fid["top1_agreement"] >= self.min_agreement
        from accelc.reference import Reference

        x = fidelity_inputs(before, self.context)
        scale = float(np.sqrt(np.mean(np.square(Reference(before).run(x)[0])))) or 1.0
        return fid["rmse"] / scale <= self.max_rel_err

    def _excluded(self, model: onnx.ModelProto) -> list[str]:
        """The user's exclusions plus ops that must stay float: Softmax/LogSoftmax producing an output."""
        outputs = {o.name for o in model.graph.output}
        names = {n.name for n in model.graph.node}
        unknown = [e for e in self.exclude if e not in names]
        if unknown:
            raise PassError(f"quantize: exclude names no node: {', '.join(unknown)} (node names: "
                            f"{', '.join(sorted(names))})")
        auto = [n.name for n in model.graph.node if n.op_type in OUTPUT_OPS_KEPT_FLOAT and set(n.output) & outputs]
        return sorted(set(self.exclude) | set(auto))

    def _speed(self, before: onnx.ModelProto, after: onnx.ModelProto) -> tuple[list[dict], list[str]]:
        from accelc.transforms.compress._timing import speed_ratio

        target = self.context.target or "cpu"
        providers = ["CUDAExecutionProvider"] if target == "cuda" else ["CPUExecutionProvider"]
        import onnxruntime as ort

        if providers[0] not in ort.get_available_providers():
            return [], [f"not timed: {providers[0]} is not available here"]
        x = fidelity_inputs(before, self.context)[0]
        rows, warnings = [], []
        for batch in TIMING_BATCHES:
            data = np.resize(x, (batch, *x.shape[1:])).astype(np.float32)
            row = speed_ratio(before, after, data, providers)
            rows.append(row)
            if row["ratio"] > 1.0:
                warnings.append(f"{self.mode} is {row['ratio']:.2f}x the fp32 time on {target} at batch {batch} "
                                f"(measured: {row['quantized_ms']:.3g} ms vs {row['float_ms']:.3g} ms) — slower, "
                                "not faster" + (" (dynamic int8 convolutions are slow on CPU: try quantize:int8 or "
                                                "ops=MatMul;Gemm)" if self.mode == "int8-dynamic" else ""))
        return rows, warnings


def _summary(stats: dict) -> str:
    fid = stats["fidelity"]
    size = stats["size_bytes"]
    speed = ", ".join(f"batch {r['batch']}: {r['ratio']:.2f}x fp32 time" for r in stats["speed"]) or "not timed"
    agree = f", top-1 agreement {fid['top1_agreement']:.3f}" if "top1_agreement" in fid else ""
    return (f"{stats['mode']}: size {size['before']:,} -> {size['after']:,} bytes; {speed}; vs float on "
            f"{fid['samples']} {fid['data']} inputs: max abs err {fid['max_abs_err']:.3g}{agree}")
