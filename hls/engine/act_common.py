"""What the activation kernels share: the C math library (the very functions the C simulation links), fixed-point
helpers, reading the layer text, and building the tables exactly as hls4ml's init_*_table functions do (see
accelc.hls.engine.activations for the whole story)."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import re
import weakref
from functools import cache, lru_cache

import numpy as np

from accelc.hls.cost import _eval  # noqa: PLC2701 - the C constant-expression evaluator the project reader uses
from accelc.hls.engine.fixed import EXACT_BITS, EngineUnsupported, FixedType, cast, cast_int_codes
from accelc.hls.engine.project import _ARRAY_T, _NUMBER, Call, Config, Project, _read_configs

# g++ -O3 fully unrolls an init loop of 2 entries and folds its tanhf/expf calls (measured: g++ 12, both -O1 and
# -O3 call the library for 4 to 64 entries); gcc's complete-peeling limit is 16 iterations.
MAX_FOLDABLE_TABLE = 16

# ------------------------------------------------------------------------------------------------ C math library


@cache
def _libm() -> ctypes.CDLL:
    name = ctypes.util.find_library("m")
    try:
        return ctypes.CDLL(name or "libm.so.6")
    except OSError as e:
        raise EngineUnsupported(f"the C math library (expf, tanhf, logf) cannot be loaded: {e}") from e


_LIBM_SIGNATURES = {"expf": ctypes.c_float, "tanhf": ctypes.c_float, "logf": ctypes.c_float, "log": ctypes.c_double}


@cache
def _libm_function(name: str):
    fn = getattr(_libm(), name)
    ctype = _LIBM_SIGNATURES[name]
    fn.restype = ctype
    fn.argtypes = [ctype]
    return fn


def _libm_apply(name: str, x: np.ndarray) -> np.ndarray:
    """The C library's `name` on every element (each distinct value once); float32 or float64 as its C type."""
    dtype = np.float32 if _LIBM_SIGNATURES[name] is ctypes.c_float else np.float64
    x = np.asarray(x, dtype=dtype)
    uniq, inverse = np.unique(x, return_inverse=True)
    fn = _libm_function(name)
    out = np.fromiter((fn(float(v)) for v in uniq), dtype=dtype, count=uniq.size)
    return out[inverse].reshape(x.shape)


def _correctly_rounded(name: str, x: np.ndarray) -> np.ndarray:
    """What a compile-time fold (MPFR, correctly rounded) gives, up to double rounding from float64."""
    fn = {"expf": np.exp, "tanhf": np.tanh, "logf": np.log, "log": np.log}[name]
    dtype = np.float32 if _LIBM_SIGNATURES[name] is ctypes.c_float else np.float64
    with np.errstate(over="ignore", divide="ignore"):
        return fn(np.asarray(x, dtype=np.float64)).astype(dtype)


# ------------------------------------------------------------------------------------------------ fixed point


def _to_type(v: np.ndarray, t: FixedType) -> np.ndarray:
    """A float/double assigned into t (ap_fixed_base(double)): cast, with +-inf and huge values exact too (the
    C++ treats inf as a huge power of two: WRAP gives 0, SAT the bound, SAT_ZERO 0)."""
    v = np.asarray(v, dtype=np.float64)
    scaled = np.abs(v) * 2.0**t.frac
    big = ~np.isfinite(v) | (scaled >= 2.0 ** (EXACT_BITS - 1))
    if not big.any():
        return cast(v, t)
    out = cast(np.where(big, 0.0, v), t)
    lo, hi = t.lo_code * t.lsb, t.hi_code * t.lsb
    for i in np.flatnonzero(big):
        x = float(v.flat[i])
        if math.isnan(x):
            raise EngineUnsupported(f"NaN assigned into {t}")
        if math.isinf(x):
            if t.overflow in ("WRAP", "SAT_ZERO"):
                out.flat[i] = 0.0
            elif x > 0:
                out.flat[i] = hi
            else:
                out.flat[i] = -hi if (t.overflow == "SAT_SYM" and t.signed) else lo
        else:  # an integer-valued double: exact in Python integers
            out.flat[i] = cast_int_codes(np.array([int(x * 2.0**t.frac)], dtype=object), t.frac, t)[0]
    return out


def _codes(x: np.ndarray, t: FixedType) -> np.ndarray:
    """Integer codes (int64) of values of t."""
    if t.width > 62:
        raise EngineUnsupported(f"{t}: too wide for integer codes")
    return np.rint(np.ldexp(x, t.frac)).astype(np.int64)


def _bits(x: np.ndarray, t: FixedType) -> np.ndarray:
    """The raw bit pattern (two's complement, `x.V`) of values of t as non-negative int64."""
    return np.mod(_codes(x, t), np.int64(1) << t.width)


def _mult_type(a: FixedType, b: FixedType) -> FixedType:
    return FixedType(a.width + b.width, a.integer + b.integer, a.signed or b.signed)


def _plus_type(a: FixedType, b: FixedType) -> FixedType:
    i = max(a.integer + (b.signed and not a.signed), b.integer + (a.signed and not b.signed)) + 1
    return FixedType(i + max(a.frac, b.frac), i, a.signed or b.signed)


def _product(a: np.ndarray, a_t: FixedType, b: np.ndarray, b_t: FixedType, out_t: FixedType) -> np.ndarray:
    """`res_T r = a * b`: the ap product is exact (a_t x b_t wide), then one cast into out_t; in float64 when the
    product's codes fit it, in Python integers beyond."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    if a_t.width + b_t.width <= EXACT_BITS:
        return cast(a * b, out_t)
    codes = _codes(a, a_t).astype(object) * _codes(b, b_t).astype(object)
    return cast_int_codes(codes, a_t.frac + b_t.frac, out_t).reshape(a.shape)


def _wrap32(q: np.ndarray) -> np.ndarray:
    """An integer as C's int keeps it (the low 32 bits, two's complement)."""
    q = np.asarray(q, dtype=object) if q.dtype == object else q.astype(np.int64)
    return ((q + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int64)


def _scaled_int(x: np.ndarray, t: FixedType, mul: int, div: int) -> np.ndarray:
    """`int(x * mul / div)` with x an ap_fixed of type t, mul an unsigned and div an int constant: the product is
    exact, the division truncates toward zero at t's fraction bits and the conversion to int truncates toward
    zero (together one truncation toward zero of the exact quotient), then C keeps the low 32 bits."""
    c = _codes(x, t)
    shift = -t.frac if t.frac < 0 else 0
    den = abs(div) << max(t.frac, 0)
    if t.width + max(mul, 1).bit_length() + shift < 62 and den.bit_length() < 62:
        num = c * np.int64(mul) * (np.int64(1) << shift)
        q = np.abs(num) // np.int64(den) * np.sign(num)
    else:
        num = c.astype(object) * mul * (1 << shift)
        q = np.array([abs(n) // den * (1 if n >= 0 else -1) for n in num.reshape(-1)], dtype=object).reshape(c.shape)
    if div < 0:
        q = -q
    return _wrap32(q)


def _uint_gt(index: np.ndarray, bound: int) -> np.ndarray:
    """`index > bound` with index an int and bound an unsigned expression: C compares as unsigned."""
    return np.where(index < 0, True, index > bound)


# ------------------------------------------------------------------------------------------------ project text


_PROJECT_TEXT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _texts(project: Project) -> dict:
    """The nnet:: base structs of the activation configs (their defaults: activ_config's table_t, ...)."""
    if project not in _PROJECT_TEXT:
        header = project.dir / "nnet_utils" / "nnet_activation.h"
        _PROJECT_TEXT[project] = {"bases": _read_configs(header.read_text()) if header.exists() else {}}
    return _PROJECT_TEXT[project]


def _literal_arg(call: Call) -> float:
    """The numeric argument of a parametrized activation (`nnet::leaky_relu<...>(x, 0.1, y)`), as its double."""
    numbers = call.literals
    if len(numbers) != 1:
        raise EngineUnsupported(f"{call.layer}: expected one numeric parameter in the call, found {numbers}")
    return float(numbers[0].rstrip("fFlL"))


def _static_member(call: Call, member: str) -> tuple[FixedType, float]:
    """A static const defined after its config struct (`const slope14_t hard_sigmoid_config14::slope = 0.2;`):
    its type and the value it holds (the literal assigned into that type)."""
    name = call.config.name
    m = re.search(rf"const\s+([\w:<>, ]+?)\s+{re.escape(name)}::{member}\s*=\s*([^;]+);",
                  call.project.parameters)
    if m is None or not _NUMBER.match(m[2].strip()):
        raise EngineUnsupported(f"{call.layer}: {name}::{member} is not defined as a number in parameters.h")
    t = call.type(m[1].strip())
    return t, float(_to_type(np.array([float(m[2].strip().rstrip("fFlL"))]), t)[0])


def _base(call: Call) -> Config | None:
    return _texts(call.project)["bases"].get(call.config.base) if call.config else None


def _config_int(call: Call, key: str) -> int:
    """An integer field of the config, or of the nnet:: struct it derives from (its default)."""
    cfg = call.config
    if cfg is None:
        raise EngineUnsupported(f"{call.layer}: no config struct")
    if key in cfg.ints:
        return cfg.ints[key]
    base = _base(call)
    if base is not None and key in base.ints:
        return base.ints[key]
    raise EngineUnsupported(f"{call.layer}: config {cfg.name} has no integer field {key!r}")


def _config_type(call: Call, alias: str) -> FixedType:
    """A typedef of the config, or of the nnet:: struct it derives from (activ_config's table_t)."""
    if call.config is not None and alias in call.config.types:
        return call.config_type(alias)
    base = _base(call)
    if base is not None and alias in base.types:
        return call.project.element_type(base.types[alias])
    raise EngineUnsupported(f"{call.layer}: config has no type {alias!r}")


def _word(call: Call, i: int = 0) -> int:
    """Elements per stream word (nnet::array<T, size>) of the call's i-th template type."""
    m = _ARRAY_T.match(call.project.declaration(call.template[i]))
    size = _eval(m[2], {}) if m else None
    if size is None:
        raise EngineUnsupported(f"{call.layer}: {call.template[i]} is not a stream word type of known size")
    return int(size)


def _stream(call: Call) -> bool:
    return call.project.is_stream(call.template[0])


def _in_t(call: Call) -> FixedType:
    return call.type(call.template[0])


def _out_t(call: Call) -> FixedType:
    return call.type(call.template[-2])


# ------------------------------------------------------------------------------------------------ tables


def _range_inputs(kind: str, n: int) -> np.ndarray:
    """The float in_val of entry ii, computed in double as written, then rounded to float."""
    ii = np.arange(n, dtype=np.float64)
    if kind == "tanh":  # 2 * 4.0 * (ii - float(N) / 2.0) / float(N)
        v = 8.0 * (ii - n / 2.0) / float(n)
    elif kind in ("elu", "selu"):  # -8.0 * ii / float(N)
        v = -8.0 * ii / float(n)
    elif kind == "inv_legacy":  # 64.0 * ii / float(N)
        v = 64.0 * ii / float(n)
    else:  # 2 * 8.0 * (ii - float(N) / 2.0) / float(N)
        v = 16.0 * (ii - n / 2.0) / float(n)
    return v.astype(np.float32)


def _table_floats(kind: str, x: np.ndarray, fn) -> np.ndarray:
    """The function value (the float, or the double for inv_legacy) each init_*_table assigns into table_t."""
    f32, f64 = np.float32, np.float64
    with np.errstate(over="ignore", divide="ignore"):
        if kind == "sigmoid":  # 1.0 / (1 + std::exp(-input)): float add, double divide, float return
            return (1.0 / (f32(1) + fn("expf", -x)).astype(f64)).astype(f32)
        if kind == "tanh":  # tanh(float) resolves to tanhf
            return fn("tanhf", x)
        if kind == "softplus":  # std::log(std::exp(input) + 1.): the + 1. is double, so is log
            return fn("log", fn("expf", x).astype(f64) + 1.0).astype(f32)
        if kind == "softsign":  # input / (std::abs(input) + 1.)
            return (x.astype(f64) / (np.abs(x).astype(f64) + 1.0)).astype(f32)
        if kind == "elu":  # std::exp(input) - 1.
            return (fn("expf", x).astype(f64) - 1.0).astype(f32)
        if kind == "selu":
            e = fn("expf", x).astype(f64) - 1.0
            return (1.0507009873554804934193349852946 * (1.6732632423543772848170429916717 * e)).astype(f32)
        if kind == "exp_legacy":
            return fn("expf", x)
        if kind == "inv_legacy":  # if (in_val > 0.0) 1.0 / in_val else 0.0, in double
            xd = x.astype(f64)
            return np.where(xd > 0.0, 1.0 / np.where(xd > 0.0, xd, 1.0), 0.0)
    raise AssertionError(kind)


def _fold_safe(layer: str, n: int, values, t: FixedType) -> np.ndarray:
    """The table from the C library; for a table g++ could fold at compile time, also the correctly rounded one,
    and a refusal where the two disagree."""
    table = _to_type(values(_libm_apply), t)
    if n <= MAX_FOLDABLE_TABLE:
        folded = _to_type(values(lambda name, x: _correctly_rounded(name, x)), t)
        if not np.array_equal(table, folded):
            raise EngineUnsupported(f"{layer}: a {n}-entry table g++ may evaluate at compile time, where its "
                                    "correctly rounded math differs from the C library's")
    table.flags.writeable = False  # cached and shared
    return table


@lru_cache(maxsize=256)
def _range_table(layer: str, kind: str, n: int, t: FixedType) -> np.ndarray:
    x = _range_inputs(kind, n)
    return _fold_safe(layer, n, lambda fn: _table_floats(kind, x, fn), t)


def _ceillog2(x: int) -> int:
    return 1 if x <= 2 else 1 + _ceillog2((x + 1) // 2)


def _idx_value(i: np.ndarray, t: FixedType, n_bits: int) -> np.ndarray:
    """softmax_real_val_from_idx: the value of t whose top n_bits hold i (the rest zero)."""
    code = i.astype(np.int64) << (t.width - n_bits)
    if t.signed:
        code = np.where(code >= (np.int64(1) << (t.width - 1)), code - (np.int64(1) << t.width), code)
    return np.ldexp(code.astype(np.float64), -t.frac)


def _check_slice(layer: str, size: int, t: FixedType, what: str) -> int:
    n_bits = _ceillog2(size)
    if size != 1 << n_bits:
        raise EngineUnsupported(f"{layer}: {what} of {size} entries (not a power of two: indices run past it)")
    if n_bits > t.width:
        raise EngineUnsupported(f"{layer}: {what} of {size} entries indexed by the top {n_bits} bits of {t}")
    return n_bits


@lru_cache(maxsize=256)
def _exp_table(layer: str, size: int, idx_t: FixedType, scale: float, negative: bool, t: FixedType) -> np.ndarray:
    """init_exp_table<idx_t>: expf of each index's value (times exp_scale, in float; negated for stable)."""
    n_bits = _check_slice(layer, size, idx_t, "exp table")
    x = _idx_value(np.arange(size), idx_t, n_bits).astype(np.float32) * np.float32(scale)
    if negative:
        x = -x
    return _fold_safe(layer, size, lambda fn: fn("expf", x), t)


@lru_cache(maxsize=256)
def _invert_table(layer: str, size: int, idx_t: FixedType, t: FixedType) -> np.ndarray:
    """init_invert_table<idx_t>: `inv_table_t inv_x = 1 / x` with x a float (a float division; 1 / 0 = inf)."""
    n_bits = _check_slice(layer, size, idx_t, "inverse table")
    x = _idx_value(np.arange(size), idx_t, n_bits).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.float32(1) / x
    table = _to_type(inv, t)
    table.flags.writeable = False  # cached and shared
    return table


def _slice_index(x: np.ndarray, t: FixedType, size: int) -> np.ndarray:
    """softmax_idx_from_real_val: the top ceillog2(size) bits of x's bit pattern."""
    return _bits(x, t) >> (t.width - _ceillog2(size))


