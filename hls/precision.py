"""Fixed-point types per layer, derived from observed value ranges instead of one blanket type.

hls4ml's blanket default (fixed<16,6>) overflows silently where activations exceed +-32 and wastes
fraction bits where they are small. Here each layer's integer bits come from the largest magnitude
seen (calibration data, or seeded random inputs) plus headroom; the remaining bits are fractional.
Results saturate instead of wrapping, so an unexpected outlier clips rather than flips sign.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from accelc.fpga_rules import FPGA_WIDTH_KEY, FPGA_WIDTHS_KEY, integer_bits  # noqa: F401 - re-exported


@dataclass(frozen=True)
class PrecisionPolicy:
    width: int = 18  # result (activation) width
    weight_width: int = 18
    accum_extra: int = 8  # accumulators are this much wider than results
    headroom: int = 1  # integer bits beyond what the observed range needs

    def to_dict(self) -> dict:
        return {"width": self.width, "weight_width": self.weight_width, "accum_extra": self.accum_extra,
                "headroom": self.headroom}


def fixed(width: int, int_bits: int, rounding: str = "RND", saturation: str = "SAT") -> str:
    int_bits = min(int_bits, width)  # never more integer than total bits
    return f"fixed<{width},{int_bits},{rounding},{saturation}>"


def result_type(max_abs: float, policy: PrecisionPolicy) -> str:
    return fixed(policy.width, integer_bits(max_abs, policy.headroom))


def accum_type(max_abs: float, policy: PrecisionPolicy) -> str:
    # Partial sums can exceed the final value; extra integer bits and extra fraction bits both help.
    i = integer_bits(max_abs, policy.headroom) + policy.accum_extra // 2
    return fixed(policy.width + policy.accum_extra, i, "TRN", "WRAP")


def weight_type(max_abs: float, policy: PrecisionPolicy) -> str:
    # Weights are exact constants: no headroom needed, round to nearest.
    return fixed(policy.weight_width, integer_bits(max_abs, 0), "RND", "SAT")


_TYPE = re.compile(r"^(?:ap_)?(u?)(fixed|int)<\s*(\d+)\s*(?:,\s*(-?\d+))?")


def type_range(hls_type: str) -> tuple[float, float] | None:
    """[lo, hi] an hls4ml fixed/int type holds (fixed<W,I>: -2^(I-1) .. 2^(I-1) - 2^(I-W)); None if not one."""
    m = _TYPE.match(str(hls_type).strip())
    if not m:
        return None
    unsigned, kind, width = m.group(1) == "u", m.group(2), int(m.group(3))
    ints = width if kind == "int" else int(m.group(4) if m.group(4) is not None else width)
    lsb = 2.0 ** (ints - width)
    if unsigned:
        return 0.0, 2.0**ints - lsb
    return -(2.0 ** (ints - 1)), 2.0 ** (ints - 1) - lsb
