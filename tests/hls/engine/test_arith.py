"""accumulate(): the sum of products in the accumulator type, against a term-by-term loop in exact integers that
does what hls4ml's dense kernels do: acc = (accum_t) bias; acc += (accum_t)(x * w) ...; WRAP on every add."""

from __future__ import annotations

import numpy as np
import pytest

from accelc.hls.engine.arith import accumulate, accumulate_depthwise
from accelc.hls.engine.fixed import EngineUnsupported, FixedType, cast


def _grid(rng, t: FixedType, shape) -> np.ndarray:
    return rng.integers(t.lo_code, t.hi_code + 1, size=shape).astype(np.float64) * t.lsb


def _wrap(code: int, t: FixedType) -> int:
    span = 1 << t.width
    code %= span
    return code - span if t.signed and code > t.hi_code else code


def _loop(x, w, b, acc_t: FixedType) -> np.ndarray:
    """Term by term in Python integers: floor (TRN) of each exact product into accum_t, wrapping each add."""
    f = acc_t.frac
    out = np.empty((x.shape[0], w.shape[1]))
    for n in range(x.shape[0]):
        for m in range(w.shape[1]):
            acc = _wrap(int(np.floor(b[m] * 2.0**f)), acc_t)
            for k in range(x.shape[1]):
                term = int(np.floor(x[n, k] * w[k, m] * 2.0**f))  # the product is exact in float64 here
                acc = _wrap(acc + _wrap(term, acc_t), acc_t)
            out[n, m] = acc * 2.0**-f
    return out


X_T = FixedType(12, 4, True, "RND", "SAT")
W_T = FixedType(10, 1, True, "RND", "SAT")


@pytest.mark.parametrize("acc_t", [
    FixedType(30, 8, True, "TRN", "WRAP"),  # keeps every product bit (frac 22 >= 8 + 9 = 17): one GEMM
    FixedType(16, 6, True, "TRN", "WRAP"),  # rounds each product (frac 10 < 17): term by term
    FixedType(12, 3, True, "TRN", "WRAP"),  # and wraps: sums far beyond its range
])
def test_accumulate_equals_the_term_by_term_loop(acc_t):
    rng = np.random.default_rng(0)
    x, w, b = _grid(rng, X_T, (7, 40)), _grid(rng, W_T, (40, 5)), _grid(rng, W_T, 5)
    got = accumulate(x, w, b, X_T, W_T, acc_t, "dense")
    np.testing.assert_array_equal(got, _loop(x, w, b, acc_t))


def test_integer_path_beyond_float64():
    """Products of 26-bit codes summed over 4096 terms pass 2^53: the exact integer path takes over."""
    x_t, w_t = FixedType(26, 6, True, "RND", "SAT"), FixedType(26, 2, True, "RND", "SAT")
    acc_t = FixedType(48, 10, True, "TRN", "WRAP")  # frac 38 < 20 + 24 = 44: needs the per-term path...
    rng = np.random.default_rng(1)
    x, w, b = _grid(rng, x_t, (2, 64)), _grid(rng, w_t, (64, 3)), np.zeros(3)
    with pytest.raises(EngineUnsupported):
        accumulate(x, w, b, x_t, w_t, acc_t, "dense")  # ...whose products would not fit float64: refused
    wide = FixedType(50, 6, True, "TRN", "WRAP")  # frac 44: exact products, sums beyond 2^53 -> integers
    x, w = _grid(rng, x_t, (2, 4096)), _grid(rng, w_t, (4096, 3))
    got = accumulate(x, w, b, x_t, w_t, wide, "dense")
    xi = (x * 2.0**x_t.frac).astype(np.int64).astype(object)
    wi = (w * 2.0**w_t.frac).astype(np.int64).astype(object)
    want = [[_wrap(sum(xi[n, k] * wi[k, m] for k in range(4096)), wide) for m in range(3)] for n in range(2)]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float64) * 2.0**-wide.frac)


def test_saturating_accumulator_that_could_overflow_is_refused():
    acc_t = FixedType(12, 3, True, "TRN", "SAT")
    rng = np.random.default_rng(2)
    x, w = _grid(rng, X_T, (2, 40)), _grid(rng, W_T, (40, 5))
    with pytest.raises(EngineUnsupported, match="saturating accumulator"):
        accumulate(x, w, np.zeros(5), X_T, W_T, acc_t, "dense")


def test_depthwise_equals_the_loop():
    acc_t = FixedType(16, 6, True, "TRN", "WRAP")
    rng = np.random.default_rng(3)
    x, w, b = _grid(rng, X_T, (4, 9, 6)), _grid(rng, W_T, (9, 6)), _grid(rng, W_T, 6)
    got = accumulate_depthwise(x, w, b, X_T, W_T, acc_t, "dw")
    want = np.stack([_loop(x[:, :, c], w[:, c:c + 1], b[c:c + 1], acc_t)[:, 0] for c in range(6)], axis=1)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(cast(got, acc_t), got)
