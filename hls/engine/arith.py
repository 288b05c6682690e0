"""Exact sums of products in the accumulator type, the one computation every Dense/Conv kernel shares.

hls4ml's kernels compute `acc = (accum_t) bias; acc += (accum_t)(x * w)` term by term, then `res = (res_T) acc`.
A product of two fixed-point values is exact (ap_fixed widens), so the cast of each term into accum_t rounds
only where accum_t keeps fewer fraction bits than the product has; wrap-around overflow is modular, so the order
of the additions cannot change a WRAP accumulator. Hence:
  - accum_t keeps every fraction bit of the products: one matrix product (float64 while every partial sum stays
    below 2^53, exact int64/object integers beyond) and one cast;
  - it does not: each term is rounded into accum_t first (an elementwise pass over all n_in x n_out terms,
    chunked), then summed.
A saturating accumulator is reproduced only where no partial sum can leave its range (then the order of the
additions cannot matter either); otherwise the layer is refused (EngineUnsupported).
"""

from __future__ import annotations

import numpy as np

from accelc.hls.engine.fixed import EXACT_BITS, EngineUnsupported, FixedType, cast, cast_int_codes, convert, int_codes

CHUNK_TERMS = 1 << 23  # float64 terms per chunk of the per-term path (64 MiB)


def _max_abs(a: np.ndarray) -> float:
    return float(np.max(np.abs(a))) if a.size else 0.0


def _within(a: np.ndarray, t: FixedType) -> bool:
    """Every value of a lies in t's range (a holds exact values on t's grid or finer-but-representable)."""
    return not a.size or (float(a.min()) >= t.lo_code * t.lsb and float(a.max()) <= t.hi_code * t.lsb)


def _codes(a: np.ndarray, frac: int) -> np.ndarray:
    return np.ldexp(a, frac).astype(np.int64)


def accumulate(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, x_t: FixedType, w_t: FixedType,
               acc_t: FixedType, layer: str, out_t: FixedType | None = None) -> np.ndarray:
    """acc[n, m] = (accum_t) bias[m] + sum_k (accum_t)(x[n, k] * w[k, m]) in accum_t, then cast to out_t
    (values, float64; out_t None: the accumulator's values, which must then fit float64)."""
    acc = _accumulate(x, w, bias, x_t, w_t, acc_t, layer)
    if isinstance(acc, tuple):  # exact integer codes of a wide accumulator
        codes, frac = acc
        if out_t is None:
            return cast_int_codes(codes, frac, acc_t)
        return cast_int_codes(int_codes(codes, frac, acc_t), acc_t.frac, out_t)
    return acc if out_t is None else convert(acc, acc_t, out_t)


def _accumulate(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, x_t: FixedType, w_t: FixedType,
                acc_t: FixedType, layer: str) -> np.ndarray | tuple:
    n_in = x.shape[1]
    prod_frac = x_t.frac + w_t.frac
    # Bounds from the input type (no pass over the data) where they suffice; the data's own maximum otherwise.
    max_w = _max_abs(w)
    max_x = x_t.max_abs
    if np.ldexp(n_in * max_x * max_w, prod_frac) >= 2.0 ** (EXACT_BITS - 1):
        max_x = _max_abs(x)
    b = cast(bias, acc_t) if bias is not None else np.zeros(w.shape[1])
    if acc_t.overflow != "WRAP":  # from the input type, not the data: refused before any sample runs
        bound = _max_abs(b) + n_in * x_t.max_abs * max_w
        if bound > acc_t.max_abs:
            raise EngineUnsupported(f"{layer}: saturating accumulator {acc_t} could overflow (order-dependent)")
    if acc_t.frac >= prod_frac:
        if np.ldexp(n_in * max_x * max_w, prod_frac) < 2.0 ** (EXACT_BITS - 1):
            s = x @ w
            s += b
            if _max_abs(b) + n_in * max_x * max_w <= acc_t.max_abs - acc_t.lsb or _within(s, acc_t):
                return s  # no sum can leave accum_t's range (or none did): nothing wrapped, nothing to cast
            return cast(s, acc_t)
        xc, wc = _codes(x, x_t.frac), _codes(w, w_t.frac)
        if x_t.width + w_t.width + int(np.ceil(np.log2(max(n_in, 2)))) < 63:
            s = (xc @ wc).astype(object)  # int64 holds every partial sum
        else:
            s = xc.astype(object) @ wc.astype(object)  # Python integers: exact at any width (slow, rare)
        return s * (1 << (acc_t.frac - prod_frac)) + _codes(b, acc_t.frac).astype(object), acc_t.frac
    if x_t.width + w_t.width > EXACT_BITS or acc_t.width + int(np.ceil(np.log2(max(n_in, 2)))) > EXACT_BITS - 1:
        raise EngineUnsupported(f"{layer}: per-term rounding of {x_t} x {w_t} into {acc_t} beyond float64")
    out = np.empty((x.shape[0], w.shape[1]))
    rows = max(1, CHUNK_TERMS // max(1, n_in * w.shape[1]))
    for i in range(0, x.shape[0], rows):
        terms = cast(x[i:i + rows, :, None] * w[None], acc_t)
        out[i:i + rows] = terms.sum(axis=1)
    return cast(out + b, acc_t)


def accumulate_depthwise(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, x_t: FixedType, w_t: FixedType,
                         acc_t: FixedType, layer: str) -> np.ndarray:
    """acc[n, c] = (accum_t) bias[c] + sum_k (accum_t)(x[n, k, c] * w[k, c]): one filter per channel."""
    n_k = x.shape[1]
    prod_frac = x_t.frac + w_t.frac
    max_x, max_w = _max_abs(x), _max_abs(w)
    b = cast(bias, acc_t) if bias is not None else np.zeros(w.shape[1])
    if acc_t.overflow != "WRAP" and _max_abs(b) + n_k * x_t.max_abs * max_w > acc_t.max_abs:
        raise EngineUnsupported(f"{layer}: saturating accumulator {acc_t} could overflow (order-dependent)")
    if x_t.width + w_t.width > EXACT_BITS:
        raise EngineUnsupported(f"{layer}: products {x_t} x {w_t} wider than float64")
    if acc_t.frac >= prod_frac:
        if np.ldexp(n_k * max_x * max_w, prod_frac) >= 2.0 ** (EXACT_BITS - 1):
            raise EngineUnsupported(f"{layer}: depthwise sum beyond float64")
        return cast(np.einsum("nkc,kc->nc", x, w) + b, acc_t)
    if acc_t.width + int(np.ceil(np.log2(max(n_k, 2)))) > EXACT_BITS - 1:
        raise EngineUnsupported(f"{layer}: per-term rounding into {acc_t} beyond float64")
    return cast(cast(x * w[None], acc_t).sum(axis=1) + b, acc_t)
