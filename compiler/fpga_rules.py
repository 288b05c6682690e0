"""What passes and the fpga lowering must agree on, kept below both (passes never import accelc.hls).

The quantize pass writes per-layer fixed-point widths into the graph's metadata and the lowering reads them;
the width search and the lowering size integer bits with one rule; prune explains which layers keep their
multipliers with the lowering's Resource threshold.
"""

from __future__ import annotations

import math

import numpy as np

# Model metadata the fpga lowering reads (written by the quantize pass): every layer's result/weight width,
# or per node as JSON (quantize:auto).
FPGA_WIDTH_KEY = "accelc.fpga.width"
FPGA_WIDTHS_KEY = "accelc.fpga.widths"

# A layer with more (nonzero) multiplications than this is implemented with the Resource strategy by default:
# fully unrolled (Latency) code for large layers takes minutes to compile even for C simulation.
LARGE_LAYER_MULTS = 4096


def integer_bits(max_abs: float, headroom: int) -> int:
    """Integer bits (sign included) to hold +-max_abs."""
    if not np.isfinite(max_abs) or max_abs <= 0:
        return 1 + headroom
    return max(1, math.floor(math.log2(max_abs)) + 2) + headroom


def needs_resource(nonzero_mults: int) -> bool:
    """The automatic strategy choice for one layer: Resource above LARGE_LAYER_MULTS nonzero multiplications
    per inference (weights x output pixels), else Latency. One rule for build_config and its callers."""
    return nonzero_mults > LARGE_LAYER_MULTS


# What runs an fpga artifact (accelc.load(engine=...), compile(engine=...)).
ENGINES = ("auto", "numpy", "csim")


def check_engine(engine: str | None) -> str:
    from accelc.errors import AccelcError

    engine = (engine or "auto").lower()
    if engine not in ENGINES:
        raise AccelcError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    return engine
