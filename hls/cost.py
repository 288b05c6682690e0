"""FPGA cost estimates read from the generated hls4ml project, without vendor tools.

Everything hls4ml itself fixes is read back, not re-derived: the call order and the operand types of
every layer (firmware/myproject.cpp, firmware/defines.h), and per layer n_in, n_out, reuse factor,
strategy, n_zeros, n_partitions and the image sizes (firmware/parameters.h); the multiplier count is
hls4ml's own `multiplier_limit` (see accelc.hls.multipliers). What is *estimated* here, and how:

DSPs vs LUT multipliers (Xilinx DSP48E2/DSP58, whose multiplier is 27 x 18 bits signed):
  a W_a x W_w product (activation x weight) whose narrower operand has at most LUT_MULT_MAX_BITS (10)
  bits is built from LUTs (shift-and-add, as Vivado/Vitis HLS does for narrow and constant operands);
  a wider one takes ceil(max(W_a, W_w) / 27) * ceil(min(W_a, W_w) / 18) DSP slices. A 1-bit scale
  (hls4ml's bias-only ApplyAlpha layers) needs no multiplier at all. Multipliers per layer: under the
  Latency strategy hls4ml bounds them by multiplier_limit = ceil(n_in*n_out/RF) - n_zeros/RF (HLS
  drops x*0 for constant zero weights); under Resource about ceil(n_in*n_out/RF), zeros or not.

Latency in clock cycles (a deliberately simple pipeline model, not a schedule):
  Dense/Conv kernel: RF cycles of multiplier reuse + ceil(log2(n_in)) adder-tree stages.
  io_parallel: Dense = RF + tree; Conv = n_partitions * RF + tree (hls4ml pipelines the partition loop
    at II = RF); activations, pooling, bias and other element-wise layers = 1 cycle. The layers run one
    after another, so the latency is the sum; a new input can enter every max(RF) cycles.
  io_stream: Conv reads one input pixel per II = RF: in_height * in_width * RF + tree; Dense first
    gathers its n_in / beat input words, then RF + tree; other layers move one stream word per cycle
    (pooling: one input pixel per cycle). Under DATAFLOW the layers overlap, so the sum is an upper
    bound on the latency and the slowest layer sets the interval between inputs.

Real numbers need C synthesis: with vitis-run/vivado_hls on PATH, `accelc compile --synth` runs it
(accelc.hls.synth) and the manifest holds hls4ml's parsed report; without, these estimates are all there is.
"""

from __future__ import annotations

import ast
import math
import re
import shutil
from pathlib import Path

from accelc.errors import AccelcError
from accelc.hls.multipliers import multipliers as read_multipliers

LUT_MULT_MAX_BITS = 10  # a product whose narrower operand is this wide or less goes to LUTs
DSP_A_BITS = 27  # DSP48E2 multiplier: 27 x 18 signed
DSP_B_BITS = 18
HLS_TOOLS = ("vitis-run", "vitis_hls", "vivado_hls")

MODEL = [
    f"DSP vs LUT: a W_a x W_w product whose narrower operand has <= {LUT_MULT_MAX_BITS} bits maps to LUTs; "
    f"wider ones take ceil(max(W_a,W_w)/{DSP_A_BITS}) * ceil(min(W_a,W_w)/{DSP_B_BITS}) DSP48 slices "
    f"({DSP_A_BITS}x{DSP_B_BITS} multipliers); a 1-bit scale needs no multiplier.",
    "Multipliers per layer: hls4ml's multiplier_limit from parameters.h (Latency: ceil(n_in*n_out/RF) - "
    "n_zeros/RF; Resource: ceil(n_in*n_out/RF), zeros kept).",
    "Latency, io_parallel: Dense = RF + ceil(log2 n_in) adder stages; Conv = n_partitions*RF + ceil(log2 n_in); "
    "other layers 1 cycle; total = sum, interval = max RF.",
    "Latency, io_stream: Conv = in_height*in_width*RF + ceil(log2 n_in) (one input pixel per II=RF); Dense = "
    "input words + RF + ceil(log2 n_in); other layers one stream word per cycle; total = sum (upper bound: "
    "DATAFLOW overlaps layers), interval = slowest layer.",
]

_STRUCT = re.compile(r"(?:// (?P<layer>[^\n]+)\n)?struct (?P<name>\w+)(?: : (?P<base>[\w:]+))? \{(?P<body>.*?)\n\};",
                     re.S)
_FIELD = re.compile(r"static const (?:unsigned|int|bool|[\w:]+) (\w+)\s*=\s*([^;]+);", re.S)
_TYPE_ALIAS = re.compile(r"typedef (\w+) (\w+);")
_TYPEDEF = re.compile(r"^typedef (.+) (\w+);\s*$", re.M)
CALL_LINE = re.compile(r"^\s*nnet::(?P<func>\w+)<(?P<targs>[^;]*?)>\((?P<args>[^;]*)\);\s*// (?P<layer>\S+)\s*$", re.M)
_SAVE = re.compile(r'nnet::save_layer_output<\w+>\(\w+, "(?P<layer>[^"]+)", (?P<size>[^)]+)\);')
_FIXED = re.compile(r"(?P<u>u?)fixed<\s*(?P<w>\d+)\s*,\s*(?P<i>-?\d+)")
_INT = re.compile(r"(?P<u>u?)int<\s*(?P<w>\d+)\s*>")
_BEAT = re.compile(r"nnet::array<.*>,\s*([\d*\s]+)>\s*$")
_TERNARY = re.compile(r"^\((?P<cond>[^()]+)\)\s*\?\s*(?P<a>[^:]+):(?P<b>.+)$")


def parse_type(text: str) -> dict | None:
    """Width and integer bits of an hls4ml/ap_ type: fixed<18,5,RND,SAT>, ap_fixed<26,8>, ap_uint<1>, ..."""
    m = _FIXED.search(text)
    if m:
        return {"width": int(m["w"]), "integer": int(m["i"]), "signed": not m["u"]}
    m = _INT.search(text)
    if m:
        return {"width": int(m["w"]), "integer": int(m["w"]), "signed": not m["u"]}
    return None


def fixed_range(text: str) -> tuple[float, float] | None:
    """[min, max] a fixed<W,I> type represents: [-2^(I-1), 2^(I-1) - 2^-(W-I)] (unsigned: [0, 2^I - 2^-(W-I)])."""
    t = parse_type(text)
    if t is None:
        return None
    w, i = t["width"], t["integer"]
    lsb = 2.0 ** -(w - i)
    if t["signed"]:
        return -(2.0 ** (i - 1)), 2.0 ** (i - 1) - lsb
    return 0.0, 2.0**i - lsb


def short_type(text: str | None) -> str | None:
    """ap_fixed<18,4,AP_RND,AP_SAT,0> -> fixed<18,4>; ap_uint<1> -> uint<1>."""
    if not text:
        return None
    m = _FIXED.search(text)
    if m:
        return f"{m['u']}fixed<{m['w']},{m['i']}>"
    m = _INT.search(text)
    return f"{m['u']}int<{m['w']}>" if m else text


def _eval(expr: str, names: dict[str, int]) -> int | None:
    """A C constant expression from parameters.h (products, DIV_ROUNDUP, a ternary) over known names."""
    expr = " ".join(expr.split())
    t = _TERNARY.match(expr)
    if t:
        expr = f"({t['a'].strip()}) if ({t['cond'].strip()}) else ({t['b'].strip()})"
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                   ast.Div: lambda: a // b, ast.FloorDiv: lambda: a // b, ast.Mod: lambda: a % b}
            return ops[type(node.op)]()
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "DIV_ROUNDUP":
            a, b = (ev(x) for x in node.args)
            return -(-a // b)
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
            return int(ev(node.left) == ev(node.comparators[0]))
        raise ValueError(ast.dump(node))

    try:
        return int(ev(tree))
    except (KeyError, ValueError, ZeroDivisionError, TypeError):
        return None


def read_configs(text: str) -> dict[str, dict]:
    """parameters.h: struct name -> {base, layer (the comment above it), fields (ints), strategy, types}."""
    configs = {}
    for m in _STRUCT.finditer(text):
        body = m.group("body")
        fields: dict[str, int] = {}
        strategy = None
        for key, value in _FIELD.findall(body):
            value = value.strip()
            if key == "strategy":
                strategy = value.removeprefix("nnet::")
                continue
            v = _eval(value, fields)
            if v is not None:
                fields[key] = v
        types = {alias: name for name, alias in _TYPE_ALIAS.findall(body)}
        configs[m.group("name")] = {"base": (m.group("base") or "").removeprefix("nnet::"),
                                    "layer": (m.group("layer") or "").strip() or None,
                                    "fields": fields, "strategy": strategy, "types": types}
    return configs


def read_typedefs(text: str) -> dict[str, dict]:
    """defines.h: type name -> {type (short), width, integer, signed, beat (elements per stream word)}."""
    out = {}
    for decl, name in _TYPEDEF.findall(text):
        t = parse_type(decl)
        if t is None:
            continue
        beat = _BEAT.search(decl)
        t["type"] = short_type(decl)
        t["beat"] = _eval(beat.group(1), {}) if beat else 1
        out[name] = t
    return out


def split_args(text: str) -> list[str]:
    """Comma-separated C++ arguments, commas inside <...> kept."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += ch == "<"
        depth -= ch == ">"
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def read_calls(text: str) -> list[dict]:
    """myproject.cpp: the layer calls in order: function, in/out types, config struct, arrays, output size."""
    sizes = {m["layer"]: _eval(m["size"], {}) for m in _SAVE.finditer(text)}
    calls = []
    for m in CALL_LINE.finditer(text):
        targs = split_args(m["targs"])
        args = split_args(m["args"])
        if len(targs) < 3:
            continue
        calls.append({"layer": m["layer"], "function": m["func"], "in_type": targs[0], "out_type": targs[-2],
                      "config": targs[-1], "arrays": args[2:], "size": sizes.get(m["layer"])})
    return calls


def dsps_per_multiplier(a_bits: int, w_bits: int) -> int:
    """DSP48 slices for one a_bits x w_bits product; 0 where it goes to LUTs (see the module docstring)."""
    lo, hi = sorted((a_bits, w_bits))
    if lo <= LUT_MULT_MAX_BITS:
        return 0
    return math.ceil(hi / DSP_A_BITS) * math.ceil(lo / DSP_B_BITS)


def manifest_precision(layer: str, precision: dict) -> dict | None:
    """The manifest's precision entry for an hls4ml layer: keys are the node names hls4ml prefixes
    (conv1_Conv -> Conv2D_conv1_Conv, fc1_Gemm_bias -> bn_fc1_Gemm_bias)."""
    if layer in precision:
        return precision[layer]
    matches = [k for k in precision if layer.endswith("_" + k)]
    return precision[max(matches, key=len)] if matches else None


def _tree(n_in: int) -> int:
    return max(1, math.ceil(math.log2(max(n_in, 2))))


def _layer(call: dict, configs: dict, types: dict, io_type: str, mults: dict) -> dict:
    cfg = configs.get(call["config"], {"base": "", "fields": {}, "types": {}, "strategy": None})
    f = cfg["fields"]
    t_in, t_out = types.get(call["in_type"]), types.get(call["out_type"])
    stream = io_type == "io_stream"
    size = call["size"]
    row = {"name": call["layer"], "function": call["function"], "config": call["config"], "kind": "other",
           "in_type": t_in and t_in["type"], "out_type": t_out and t_out["type"], "weight_type": None,
           "in_bits": t_in and t_in["width"], "out_bits": t_out and t_out["width"], "weight_bits": None,
           "outputs": size, "activation_bits": size * t_out["width"] if size and t_out else None,
           "reuse_factor": f.get("reuse_factor", 1), "strategy": cfg["strategy"], "n_in": None, "n_out": None,
           "pixels": None, "weights": 0, "zeros": 0, "biases": 0, "macs": 0, "mults": 0, "multipliers": 0,
           "multiplier_kind": None, "dsp_per_multiplier": 0, "dsps": 0, "lut_multipliers": 0,
           "weight_storage_bits": 0, "weight_array": next((a for a in call["arrays"] if re.fullmatch(r"w\d+", a)),
                                                          None), "cycles": 1, "cycle_model": "1 (element-wise)"}
    mult_cfg = configs.get(cfg["types"].get("mult_config", "")) if "mult_config" in cfg["types"] else None
    kernel = mult_cfg or (cfg if cfg["base"] == "dense_config" else None)
    rf = row["reuse_factor"]
    if kernel is not None and "n_in" in kernel["fields"] and "n_out" in kernel["fields"]:
        k = kernel["fields"]
        n_in, n_out = k["n_in"], k["n_out"]
        rf = k.get("reuse_factor", rf)
        conv = mult_cfg is not None
        if conv:
            pixels = f.get("out_height", 1) * f.get("out_width", 1)
        else:
            pixels = 1
        zeros = k.get("n_zeros", 0)
        w_type = types.get(kernel["types"].get("weight_t", "")) or types.get(cfg["types"].get("weight_t", ""))
        strategy = kernel["strategy"] or cfg["strategy"] or "latency"
        limit = mults.get(call["layer"], {}).get("multipliers")
        if limit is None:
            slots = -(-n_in * n_out // rf)
            limit = slots - zeros // rf if strategy == "latency" else slots
        row.update(kind="conv" if conv else "dense", n_in=n_in, n_out=n_out, pixels=pixels, reuse_factor=rf,
                   strategy=strategy, weights=n_in * n_out, zeros=zeros, biases=n_out, macs=pixels * n_in * n_out,
                   mults=pixels * (n_in * n_out - zeros), multipliers=limit,
                   weight_type=w_type and w_type["type"], weight_bits=w_type and w_type["width"])
        tree = _tree(n_in)
        if conv and stream:
            in_pixels = f.get("in_height", 1) * f.get("in_width", 1)
            row["cycles"] = in_pixels * rf + tree
            row["cycle_model"] = f"{in_pixels} input pixels x RF {rf} + {tree} adder stages"
        elif conv:
            parts = f.get("n_partitions", pixels)
            row["cycles"] = parts * rf + tree
            row["cycle_model"] = f"{parts} partitions x RF {rf} + {tree} adder stages"
        elif stream:
            words = -(-n_in // ((t_in or {}).get("beat") or 1))
            row["cycles"] = words + rf + tree
            row["cycle_model"] = f"{words} input words + RF {rf} + {tree} adder stages"
        else:
            row["cycles"] = rf + tree
            row["cycle_model"] = f"RF {rf} + {tree} adder stages"
    elif cfg["base"] == "batchnorm_config":
        s_type = types.get(cfg["types"].get("scale_t", ""))
        n = f.get("n_scale_bias", f.get("n_in", 0))
        row.update(kind="scale", biases=n, weight_type=s_type and s_type["type"],
                   weight_bits=s_type and s_type["width"])
        if s_type and s_type["width"] > 1:  # a 1-bit scale (bias-only ApplyAlpha) multiplies by 0/1: no multiplier
            row.update(weights=n, macs=f.get("n_in", n), mults=f.get("n_in", n),
                       multipliers=f.get("multiplier_limit", -(-n // max(rf, 1))))
    if stream and row["kind"] not in ("conv", "dense"):
        if "in_height" in f and "in_width" in f:
            words = f["in_height"] * f["in_width"]
            row["cycle_model"] = f"{words} input pixels, 1 per cycle"
        else:
            words = -(-(size or 1) // ((t_out or {}).get("beat") or 1))
            row["cycle_model"] = f"{words} stream words, 1 per cycle"
        row["cycles"] = words
    if row["multipliers"]:
        a_bits, w_bits = row["in_bits"], row["weight_bits"]
        if a_bits and w_bits:
            per = dsps_per_multiplier(a_bits, w_bits)
            row["dsp_per_multiplier"] = per
            row["multiplier_kind"] = "DSP" if per else "LUT"
            row["dsps"] = per * row["multipliers"]
            row["lut_multipliers"] = 0 if per else row["multipliers"]
    if row["weight_bits"]:
        row["weight_storage_bits"] = row["weights"] * row["weight_bits"]
    return row


def _tools_note() -> tuple[dict, str]:
    tools = {t: shutil.which(t) for t in HLS_TOOLS}
    found = [t for t, p in tools.items() if p]
    if found:
        runnable = "vitis-run" in found or "vivado_hls" in found  # what accelc.hls.synth drives
        how = ("`accelc compile --synth` gives real post-synthesis DSP/LUT/FF/BRAM and latency figures (in the "
               "manifest's target.synthesis)" if runnable else
               "its csynth report has the real figures once the project is synthesised (accelc --synth drives "
               "vitis-run or vivado_hls)")
        return tools, f"{found[0]} is on PATH: {how}; the figures here are accelc's model estimates."
    return tools, ("No Vitis/Vivado HLS on PATH: these figures are estimates from accelc's cost model (read from "
                   "the generated hls4ml code), not synthesis results.")


def estimate(artifact_dir: Path, manifest: dict) -> dict:
    """Per-layer and total cost estimates of an fpga artifact's hls4ml project (JSON-serialisable)."""
    target = manifest.get("target", {})
    if target.get("name") != "fpga":
        raise AccelcError(f"cost estimates need an fpga artifact; {artifact_dir} targets {target.get('name')!r}")
    firmware = Path(artifact_dir) / "hls" / "firmware"
    texts = {}
    for name in ("parameters.h", "defines.h", "myproject.cpp"):
        path = firmware / name
        if not path.exists():
            raise AccelcError(f"{path} is missing: the artifact's hls4ml project is incomplete; recompile it")
        texts[name] = path.read_text()
    configs = read_configs(texts["parameters.h"])
    types = read_typedefs(texts["defines.h"])
    calls = read_calls(texts["myproject.cpp"])
    io_type = target.get("io_type") or ("io_stream" if "hls::stream" in texts["myproject.cpp"] else "io_parallel")
    mults = read_multipliers(Path(artifact_dir) / "hls")["layers"]
    precision = target.get("precision", {})
    layers = []
    for call in calls:
        row = _layer(call, configs, types, io_type, mults)
        row["precision"] = manifest_precision(row["name"], precision)
        layers.append(row)
    clock = target.get("clock_period")
    keys = ("weights", "zeros", "biases", "macs", "mults", "multipliers", "dsps", "lut_multipliers",
            "weight_storage_bits")
    totals = {k: sum(r[k] or 0 for r in layers) for k in keys}
    totals["activation_bits"] = sum(r["activation_bits"] or 0 for r in layers)
    cycles = [r["cycles"] for r in layers]
    totals["latency_cycles"] = sum(cycles)
    if io_type == "io_stream":
        totals["interval_cycles"] = max(cycles, default=0)
        totals["latency_kind"] = "upper bound (io_stream layers overlap under DATAFLOW)"
    else:
        totals["interval_cycles"] = max((r["reuse_factor"] for r in layers), default=1)
        totals["latency_kind"] = "sum of the layers (io_parallel)"
    totals["latency_ns"] = totals["latency_cycles"] * clock if clock else None
    totals["interval_ns"] = totals["interval_cycles"] * clock if clock else None
    warnings = []
    asked = target.get("reuse_factor")
    used = sorted({r["reuse_factor"] for r in layers if r["kind"] in ("dense", "conv")})
    if asked and used and used != [asked]:
        warnings.append(f"the manifest asks for reuse factor {asked}, but the generated Dense/Conv layers use "
                        f"{', '.join(map(str, used))} (parameters.h); these estimates follow the generated code")
    unknown = [r["name"] for r in layers if r["multipliers"] and not r["multiplier_kind"]]
    if unknown:
        warnings.append(f"operand widths unknown for {', '.join(unknown)}: no DSP/LUT split for them")
    tools, note = _tools_note()
    return {"source": "model", "tools": tools, "note": note, "model": MODEL, "io_type": io_type,
            "clock_period_ns": clock, "layers": layers, "totals": totals, "warnings": warnings}
