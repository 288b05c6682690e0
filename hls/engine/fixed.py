"""ap_fixed / ap_int arithmetic in numpy, exactly as the Xilinx ap_types headers hls4ml ships compute it.

A value of a fixed-point type is held as a float64 array of the *values* (not the codes): every value of a
type up to 53 bits wide is a float64 exactly, and a cast is then exact float64 arithmetic: scale by 2^F (a
power of two), round to an integer by the type's quantization mode, bring the integer into range by its
overflow mode, scale back. Callers that compute sums or products keep their intermediate integers below
2^53 or switch to exact integers (`accelc.hls.engine.kernels`).

Why not the `quantizers` package (an hls4ml dependency, numpy casts for TRN/RND/... and WRAP/SAT/SAT_SYM): it
has no SAT_ZERO and no exact path for values beyond float64's 53 bits; the casts here are a few lines each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from accelc.errors import AccelcError

QUANTIZATION = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV")
OVERFLOW = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")
EXACT_BITS = 53  # float64 holds every integer up to 2^53 exactly


class EngineUnsupported(AccelcError):
    """Something the numpy engine does not reproduce bit for bit (the C simulation runs it instead)."""


@dataclass(frozen=True)
class FixedType:
    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"
    integer_type: bool = False  # ap_int/ap_uint: conversions truncate toward zero (C semantics)

    @property
    def frac(self) -> int:
        return self.width - self.integer

    @property
    def lo_code(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def hi_code(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac

    @property
    def max_abs(self) -> float:
        return max(-self.lo_code, self.hi_code) * self.lsb

    def __str__(self) -> str:
        return f"{'' if self.signed else 'u'}fixed<{self.width},{self.integer},{self.rounding},{self.overflow}>"


_AP_FIXED = re.compile(r"^ap_(u?)fixed<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,\s*(AP_\w+)\s*)?(?:,\s*(AP_\w+)\s*)?"
                       r"(?:,\s*(\d+)\s*)?>$")
_AP_INT = re.compile(r"^ap_(u?)int<\s*(\d+)\s*>$")
_C_INTS = {"bool": (1, False), "char": (8, True), "signed char": (8, True), "unsigned char": (8, False),
           "short": (16, True), "unsigned short": (16, False), "int": (32, True), "unsigned": (32, False),
           "unsigned int": (32, False), "long": (64, True), "unsigned long": (64, False)}


def parse_type(text: str) -> FixedType:
    """An ap_ type as defines.h spells it: ap_fixed<18,5,AP_RND,AP_SAT,0>, ap_ufixed<8,0>, ap_int<8>, ap_uint<1>."""
    text = " ".join(text.split())
    m = _AP_FIXED.match(text)
    if m:
        unsigned, w, i, q, o, n = m.groups()
        if n is not None and int(n) != 0:
            raise EngineUnsupported(f"{text}: saturation bits N={n} are not reproduced")
        rounding = (q or "AP_TRN").removeprefix("AP_")
        overflow = (o or "AP_WRAP").removeprefix("AP_")
        if rounding not in QUANTIZATION or overflow not in OVERFLOW:
            raise EngineUnsupported(f"{text}: mode {rounding}/{overflow} is not reproduced")
        return FixedType(int(w), int(i), not unsigned, rounding, overflow)
    m = _AP_INT.match(text)
    if m:
        return FixedType(int(m[2]), int(m[2]), not m[1], "TRN_ZERO", "WRAP", integer_type=True)
    if text in _C_INTS:
        w, s = _C_INTS[text]
        return FixedType(w, w, s, "TRN_ZERO", "WRAP", integer_type=True)
    raise EngineUnsupported(f"type {text!r} is not an ap_fixed/ap_int type")


def _round(s: np.ndarray, mode: str) -> np.ndarray:
    """Integers from s (already scaled by 2^F), by an ap_fixed quantization mode; exact for any float64."""
    fl = np.floor(s)
    if mode == "TRN":
        return fl
    if mode == "TRN_ZERO":
        return np.trunc(s)
    half = fl + 0.5  # exact while |fl| < 2^52; beyond, s is an integer (no fraction to round)
    small = np.abs(fl) < 2.0**52
    up = (s > half) & small
    tie = (s == half) & small
    if mode == "RND":  # half toward +inf
        up |= tie
    elif mode == "RND_ZERO":  # half toward zero
        up |= tie & (s < 0)
    elif mode == "RND_MIN_INF":  # half toward -inf
        pass
    elif mode == "RND_INF":  # half away from zero
        up |= tie & (s > 0)
    elif mode == "RND_CONV":  # half to even
        up |= tie & (np.mod(fl, 2) == 1)
    return fl + up


def cast_codes(s: np.ndarray, t: FixedType) -> np.ndarray:
    """Integer codes of type t from values already scaled by 2^F(t): rounding, then overflow."""
    q = _round(s, t.rounding)
    lo, hi = float(t.lo_code), float(t.hi_code)
    if t.overflow == "WRAP":
        outside = (q < lo) | (q > hi)
        if not outside.any():
            return q  # nothing wraps (and a type wider than float64's 53 bits needs no arithmetic then)
        span = float(1 << t.width)
        r = np.mod(np.where(np.isfinite(q), q, 0.0), span)  # fmod is exact; r - span too (Sterbenz)
        r = np.where(r > hi, r - span, r) if t.signed else r
        return np.where(outside, r, q)
    if t.overflow == "SAT":
        return np.clip(q, lo, hi)
    if t.overflow == "SAT_SYM":
        return np.clip(q, -hi if t.signed else lo, hi)
    return np.where((q < lo) | (q > hi), 0.0, q)  # SAT_ZERO


def cast(x: np.ndarray, t: FixedType, from_double: bool = False) -> np.ndarray:
    """x (exact values, float64 or float32) converted to type t, as `t(x)` in C++; returns float64 values.
    from_double: x are C++ doubles (the model's float inputs), not fixed-point values; this differs only for
    ap_int targets, whose double constructor turns a negative value above -0.5 into +1 (ap_int_base.h)."""
    x = np.asarray(x, dtype=np.float64)  # exact values: any width holds them exactly, wrapped or not
    y = cast_codes(x * 2.0**t.frac, t) * 2.0**-t.frac  # scaling by a power of two is exact
    if from_double and t.integer_type:
        y = np.where((x < 0) & (x > -0.5), cast_codes(np.ones_like(x), t), y)
    return y


def contains(outer: FixedType, inner: FixedType) -> bool:
    """Every value of `inner` is a value of `outer` (the conversion is the identity)."""
    lo_in, hi_in = inner.lo_code * inner.lsb, inner.hi_code * inner.lsb
    return outer.frac >= inner.frac and outer.lo_code * outer.lsb <= lo_in and hi_in <= outer.hi_code * outer.lsb


def convert(x: np.ndarray, src: FixedType, dst: FixedType) -> np.ndarray:
    """Values of type src converted to dst: nothing to do where dst contains src; otherwise the cast, with the
    common TRN/RND roundings as one floor: s = x * 2^F(dst) has at most src.width significant bits, so s + 0.5
    is exact in float64 when src.width < 52."""
    if contains(dst, src):
        return x
    if src.width >= EXACT_BITS - 1 or dst.rounding not in ("TRN", "RND"):
        return cast(x, dst)
    s = x * 2.0**dst.frac
    q = np.floor(s + 0.5 if dst.rounding == "RND" else s)
    lo, hi = float(dst.lo_code), float(dst.hi_code)
    if dst.overflow == "SAT":
        np.clip(q, lo, hi, out=q)
    elif dst.overflow == "WRAP":
        if q.size and (q.min() < lo or q.max() > hi):
            q = np.mod(q - lo, float(1 << dst.width)) + lo
    else:
        return cast(x, dst)
    q *= 2.0**-dst.frac
    return q


def int_codes(codes: np.ndarray, frac: int, t: FixedType) -> np.ndarray:
    """Exact cast of integers `codes` * 2^-frac (int64 or Python-int object arrays) to t: t's integer codes."""
    shift = frac - t.frac
    codes = np.asarray(codes, dtype=object)
    if shift > 0:
        div = 1 << shift
        fl = codes // div
        rest = codes - fl * div  # 0 <= rest < div
        half = div // 2
        if t.rounding == "TRN":
            q = fl
        elif t.rounding == "TRN_ZERO":
            q = np.where((codes < 0) & (rest != 0), fl + 1, fl)
        else:
            up = rest > half
            tie = rest == half
            neg = codes < 0
            extra = {"RND": tie, "RND_ZERO": tie & neg, "RND_MIN_INF": np.zeros_like(tie),
                     "RND_INF": tie & ~neg, "RND_CONV": tie & ((fl % 2) == 1)}[t.rounding]
            q = fl + (up | extra).astype(object)
    else:
        q = codes * (1 << -shift)
    lo, hi = t.lo_code, t.hi_code
    if t.overflow == "WRAP":
        q = (q - lo) % (1 << t.width) + lo
    elif t.overflow in ("SAT", "SAT_SYM"):
        low = -hi if (t.overflow == "SAT_SYM" and t.signed) else lo
        q = np.minimum(np.maximum(q, low), hi)
    else:
        q = np.where((q < lo) | (q > hi), 0, q)
    return q


def cast_int_codes(codes: np.ndarray, frac: int, t: FixedType) -> np.ndarray:
    """Exact cast of integers `codes` * 2^-frac (int64 or Python-int object arrays) to t; returns float64 values
    (exact where t is at most 53 bits wide; keep `int_codes` for wider intermediate types)."""
    return np.ldexp(int_codes(codes, frac, t).astype(np.float64), -t.frac)
