"""Multipliers in the generated HLS, read back from hls4ml's firmware/parameters.h.

hls4ml writes, per Dense (and per Conv's inner `_mult` Dense), n_in, n_out, the reuse factor, the
strategy and n_zeros, and bounds the multipliers with `multiplier_limit = ceil(n_in*n_out/RF) -
n_zeros/RF`. That bound holds under the Latency strategy, where weights are constants and HLS drops
x*0; the Resource strategy streams weights from memory and keeps a multiplier for every weight slot.
So the count here is what the generated code will instantiate, not what a pass intended.
"""

from __future__ import annotations

import re
from pathlib import Path

_STRUCT = re.compile(r"(?:// (?P<layer>[^\n]+)\n)?struct (?P<name>config\w+) : nnet::dense_config \{(?P<body>.*?)\n\};",
                     re.S)
_FIELD = re.compile(r"static const unsigned (\w+) = ([^;]+);")


def _fields(body: str) -> dict[str, str]:
    return {k: v.strip() for k, v in _FIELD.findall(body)}


def multipliers(hls_dir: Path) -> dict:
    """Per layer: weights, zeros, strategy, reuse factor and multipliers; plus totals."""
    text = (Path(hls_dir) / "firmware" / "parameters.h").read_text()
    layers = {}
    pending_layer = None
    for m in _STRUCT.finditer(text):
        f = _fields(m.group("body"))
        layer = m.group("layer") or pending_layer or m.group("name")
        if "n_in" not in f or "n_out" not in f:
            continue
        n_in, n_out = int(f["n_in"]), int(f["n_out"])
        rf = int(f.get("reuse_factor", "1"))
        zeros = int(f.get("n_zeros", "0"))
        strategy = f.get("strategy", "nnet::latency").removeprefix("nnet::")
        slots = -(-n_in * n_out // rf)
        mults = slots - zeros // rf if strategy == "latency" else slots
        layers[layer.strip()] = {"weights": n_in * n_out, "zeros": zeros, "strategy": strategy,
                                 "reuse_factor": rf, "multipliers": mults}
    return {"total": sum(v["multipliers"] for v in layers.values()),
            "weights": sum(v["weights"] for v in layers.values()),
            "zeros": sum(v["zeros"] for v in layers.values()),
            "layers": layers}
