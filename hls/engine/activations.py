"""hls4ml's activation functions (nnet_activation.h, nnet_activation_stream.h) and accelc's extension activations
(nnet_clip.h, nnet_logsoftmax.h) in numpy, bit for bit as their C simulation.

The lookup-table functions are three computations, each reproduced as the C++ does it:
  - the table: `init_*_table` evaluates each entry in float/double (the expression as written: e.g. sigmoid's
    `1.0 / (1 + std::exp(-x))` is an expf, a float add, a double divide and a float return), then assigns the
    float into table_t, which rounds by table_t's own modes. Basic IEEE operations are the same in numpy
    (float32/float64 arrays, round to nearest even); the transcendental ones (expf, tanhf, logf, log) are not
    correctly rounded in glibc, so they are called from the C math library itself (ctypes), the very functions
    the C simulation links (`nm -D` of an emulator: expf, tanhf, logf, log). A table small enough for g++ to
    unroll its init loop could be folded at compile time (correctly rounded, MPFR): it is refused where the
    two would give different entries.
  - the index: `int data_round = data * table_size / 16` is ap_fixed arithmetic (an exact product, a division
    truncated toward zero at the dividend's fraction bits) converted to int (truncated toward zero, then the
    low 32 bits), and the clamps compare as the C++ does (int against `unsigned table_size - 1`).
  - the lookup, cast into the result type.
Softmax (every softmax_implementation) additionally reproduces the bit slicing of softmax_idx_from_real_val,
the adder tree of nnet::reduce (each partial sum cast into accum_t, so saturating accumulators are exact too)
and the casts into inp_norm_t / inv_inp_t, which wrap or saturate by their modes.

Where io_stream computes differently from io_parallel (selu's lambda type and index clamp, ternary_tanh's
threshold, legacy softmax's table sizes, softmax's slices being stream words), the kernel branches on
`call.project.is_stream`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import re
import weakref
from functools import cache, lru_cache

import numpy as np

from accelc.hls.cost import _eval  # noqa: PLC2701 - the C constant-expression evaluator the project reader uses
from accelc.hls.engine.fixed import EXACT_BITS, EngineUnsupported, FixedType, cast, cast_int_codes, convert
from accelc.hls.engine.layers import kernel
from accelc.hls.engine.project import _ARRAY_T, _CALL, Call, Config, Project, _read_configs, split_args

# g++ -O3 fully unrolls an init loop of 2 entries and folds its tanhf/expf calls (measured: g++ 12, both -O1 and
# -O3 call the library for 4 to 64 entries); gcc's complete-peeling limit is 16 iterations.
MAX_FOLDABLE_TABLE = 16
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[fFlL]?$")

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
    if project not in _PROJECT_TEXT:
        top = (project.dir / "myproject.cpp").read_text()
        args = {(m["layer"], m["func"]): split_args(m["args"]) for m in _CALL.finditer(top)}
        header = project.dir / "nnet_utils" / "nnet_activation.h"
        bases = _read_configs(header.read_text()) if header.exists() else {}
        _PROJECT_TEXT[project] = {"args": args, "params": (project.dir / "parameters.h").read_text(), "bases": bases}
    return _PROJECT_TEXT[project]


def _literal_arg(call: Call) -> float:
    """The numeric argument of a parametrized activation (`nnet::leaky_relu<...>(x, 0.1, y)`), as its double."""
    args = _texts(call.project)["args"].get((call.layer, call.function), [])
    numbers = [a for a in args if _NUMBER.match(a)]
    if len(numbers) != 1:
        raise EngineUnsupported(f"{call.layer}: expected one numeric parameter in the call, found {numbers}")
    return float(numbers[0].rstrip("fFlL"))


def _static_member(call: Call, member: str) -> tuple[FixedType, float]:
    """A static const defined after its config struct (`const slope14_t hard_sigmoid_config14::slope = 0.2;`):
    its type and the value it holds (the literal assigned into that type)."""
    name = call.config.name
    m = re.search(rf"const\s+([\w:<>, ]+?)\s+{re.escape(name)}::{member}\s*=\s*([^;]+);",
                  _texts(call.project)["params"])
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


def _declared(project: Project, name: str) -> str:
    decl, seen = project.typedefs.get(name, name), 0
    while decl in project.typedefs and seen < 8:
        decl, seen = project.typedefs[decl], seen + 1
    return " ".join(decl.split())


def _word(call: Call, i: int = 0) -> int:
    """Elements per stream word (nnet::array<T, size>) of the call's i-th template type."""
    m = _ARRAY_T.match(_declared(call.project, call.template[i]))
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


# ------------------------------------------------------------------------------------------------ plain tables


def _lookup(call: Call, x: np.ndarray, kind: str, span: int) -> np.ndarray:
    """sigmoid/softplus/softsign (span 16) and tanh (span 8): index = int(x * N / span) + span / 2 * N / span."""
    n = _config_int(call, "table_size")
    table_t = _config_type(call, "table_t")
    table = _range_table(call.layer, kind, n, table_t)
    x_t = _in_t(call)
    index = _wrap32(_scaled_int(x, x_t, n, span) + (span // 2 * n) // span)
    index = np.where(index < 0, 0, index)
    index = np.where(index > n - 1, n - 1, index)
    return convert(table[index], table_t, _out_t(call))


@kernel("sigmoid")
def sigmoid(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    return [_lookup(call, xs[0], "sigmoid", 16)]


@kernel("tanh")
def tanh(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    return [_lookup(call, xs[0], "tanh", 8)]


@kernel("softplus")
def softplus(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    return [_lookup(call, xs[0], "softplus", 16)]


@kernel("softsign")
def softsign(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    return [_lookup(call, xs[0], "softsign", 16)]


def _negative_index(call: Call, x: np.ndarray, n: int, clamp_negative: bool) -> np.ndarray:
    """elu/selu: `int index = datareg * table_size / -8`, clamped above by an unsigned comparison (so a negative
    int, from a 32-bit wrap, clamps to the top too) or, with clamp_negative, first to 0 when negative."""
    index = _scaled_int(np.minimum(x, 0.0), _in_t(call), n, -8)
    if clamp_negative:
        index = np.where(index < 0, 0, index)
    return np.where(_uint_gt(index, n - 1), n - 1, index)


@kernel("elu")
def elu(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    x, x_t, out_t = xs[0], _in_t(call), _out_t(call)
    n = _config_int(call, "table_size")
    table_t = _config_type(call, "table_t")
    table = _range_table(call.layer, "elu", n, table_t)
    if len(call.template) == 4:  # elu<data_T, param_T, res_T, CONFIG_T>(data, alpha, res)
        alpha_t = call.type(call.template[1])
        alpha = float(_to_type(np.array([_literal_arg(call)]), alpha_t)[0])
    else:  # elu<data_T, res_T, CONFIG_T>: alpha = ap_uint<1>(1.0)
        alpha_t, alpha = FixedType(1, 1, False), 1.0
    neg = _product(alpha, alpha_t, table[_negative_index(call, x, n, clamp_negative=False)], table_t, out_t)
    return [np.where(x >= 0, convert(x, x_t, out_t), neg)]


SELU_LAMBDA = 1.0507009873554804934193349852946


@kernel("selu")
def selu(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    x, x_t, out_t = xs[0], _in_t(call), _out_t(call)
    n = _config_int(call, "table_size")
    table_t = _config_type(call, "table_t")
    table = _range_table(call.layer, "selu", n, table_t)
    stream = _stream(call)
    # io_parallel: static const ap_ufixed<16, 1> lambda = 1.0507009873554805; io_stream: (data_T)1.0507...
    lambda_t = x_t if stream else FixedType(16, 1, False)
    lam = float(_to_type(np.array([1.0507009873554805 if not stream else SELU_LAMBDA]), lambda_t)[0])
    neg = table[_negative_index(call, x, n, clamp_negative=not stream)]
    return [np.where(x >= 0, _product(lam, lambda_t, x, x_t, out_t), convert(neg, table_t, out_t))]


# ------------------------------------------------------------------------------------------------ piecewise linear


@kernel("leaky_relu")
def leaky_relu(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    x, x_t, out_t = xs[0], _in_t(call), _out_t(call)
    alpha_t = call.type(call.template[1])
    alpha = float(_to_type(np.array([_literal_arg(call)]), alpha_t)[0])
    return [np.where(x > 0, convert(x, x_t, out_t), _product(alpha, alpha_t, x, x_t, out_t))]


@kernel("thresholded_relu")
def thresholded_relu(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    x, x_t, out_t = xs[0], _in_t(call), _out_t(call)
    theta = float(_to_type(np.array([_literal_arg(call)]), call.type(call.template[1]))[0])
    return [np.where(x > theta, convert(x, x_t, out_t), cast(np.zeros(1), out_t))]


@kernel("prelu")
def prelu(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    x, x_t, out_t = xs[0], _in_t(call), _out_t(call)
    alpha, alpha_t = call.weight(0)
    if alpha.size != x.shape[1]:
        raise EngineUnsupported(f"{call.layer}: {alpha.size} slopes for {x.shape[1]} values")
    return [np.where(x > 0, convert(x, x_t, out_t), _product(alpha[None, :], alpha_t, x, x_t, out_t))]


def _relu_max(call: Call, x: np.ndarray, top: int) -> np.ndarray:
    out_t = _out_t(call)
    y = np.where(x < 0, 0.0, np.where(x > top, float(top), x))  # 0, MAX_INT or data: cast into res_T
    return cast(y, out_t)


@kernel("relu6")
def relu6(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    return [_relu_max(call, xs[0], 6)]


@kernel("relu1")
def relu1(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    return [_relu_max(call, xs[0], 1)]


def _hard(call: Call, x: np.ndarray) -> tuple[np.ndarray, FixedType]:
    """`auto datareg = slope * data + shift` (exact, in the ap sum type), clamped to [0, 1] in that type."""
    slope_t, slope = _static_member(call, "slope")
    shift_t, shift = _static_member(call, "shift")
    x_t = _in_t(call)
    prod_t = _mult_type(slope_t, x_t)
    sum_t = _plus_type(prod_t, shift_t)
    if sum_t.width > EXACT_BITS:
        raise EngineUnsupported(f"{call.layer}: slope * x + shift in {sum_t} beyond float64")
    v = slope * x + shift
    one, zero = (float(cast(np.array([c]), sum_t)[0]) for c in (1.0, 0.0))
    v = np.where(v > 1, one, np.where(v < 0, zero, v))
    return v, sum_t


@kernel("hard_sigmoid")
def hard_sigmoid(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    v, sum_t = _hard(call, xs[0])
    return [convert(v, sum_t, _out_t(call))]


@kernel("hard_tanh")
def hard_tanh(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    v, sum_t = _hard(call, xs[0])
    return [cast(2 * v - 1, _out_t(call))]  # int * ap_fixed - int: exact widening arithmetic


@kernel("binary_tanh")
def binary_tanh(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    x, out_t = xs[0], _out_t(call)
    cache = np.where(x >= 0, 1.0, -1.0)  # ap_int<2>
    out_decl = _declared(call.project, call.template[-2])
    m = _ARRAY_T.match(out_decl)
    if (m[1] if m else out_decl).replace(" ", "") == "ap_uint<1>":  # binary_cast: (cache > 0) ? cache : 0
        return [np.where(cache > 0, 1.0, 0.0)]
    return [cast(cache, out_t)]


@kernel("ternary_tanh")
def ternary_tanh(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    x, x_t, out_t = xs[0], _in_t(call), _out_t(call)
    one, zero, minus = (cast(np.array([c]), out_t)[0] for c in (1.0, 0.0, -1.0))
    if _stream(call):  # in_data > 1 -> 1; in_data <= -1 -> -1; else 0
        return [np.where(x > 1, one, np.where(x <= -1, minus, zero))]
    d = cast(2 * x, x_t)  # data_T datareg = 2 * data[ii]: back into the input type
    return [np.where(d > 1, one, np.where((d > -1) & (d <= 1), zero, minus))]


@kernel("unary_lut")
def unary_lut(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    x, x_t = xs[0], _in_t(call)
    table, table_t = call.weight(0)
    index = _bits(x, x_t)  # (unsigned) x(x.width - 1, 0)
    if index.size and int(index.max()) >= table.size:
        raise EngineUnsupported(f"{call.layer}: index past the {table.size}-entry table")
    return [convert(table[index], table_t, _out_t(call))]


# ------------------------------------------------------------------------------------------------ softmax


def _reduce(values: list[np.ndarray], t: FixedType, op) -> np.ndarray:
    """nnet::reduce's balanced tree (left part the largest power of two below n), each result cast into t."""
    n = len(values)
    if n == 1:
        return values[0]
    if n == 2:
        return op(values[0], values[1])
    left = 1 << ((n - 1).bit_length() - 1)  # pow2(floorlog2(n - 1))
    return op(_reduce(values[:left], t, op), _reduce(values[left:], t, op))


def _sum_tree(layer: str, x: np.ndarray, t: FixedType) -> np.ndarray:
    """reduce<accum_t, n, Op_add<accum_t>> over the last axis (values already in t)."""
    if t.width > EXACT_BITS - 1:
        raise EngineUnsupported(f"{layer}: softmax accumulator {t} beyond float64")
    return _reduce([x[..., j] for j in range(x.shape[-1])], t, lambda a, b: cast(a + b, t))


def _max_tree(x: np.ndarray) -> np.ndarray:
    return _reduce([x[..., j] for j in range(x.shape[-1])], FixedType(1, 1), lambda a, b: np.where(a >= b, a, b))


def _softmax_table(call: Call, x: np.ndarray, x_t: FixedType, out_t: FixedType, stable: bool) -> np.ndarray:
    """softmax_latency / softmax_stable on slices x (..., n)."""
    exp_size, inv_size = _config_int(call, "exp_table_size"), _config_int(call, "inv_table_size")
    exp_t, inv_t = _config_type(call, "exp_table_t"), _config_type(call, "inv_table_t")
    acc_t, inv_inp_t = _config_type(call, "accum_t"), _config_type(call, "inv_inp_t")
    scale = float(np.float32(float(call.config.raw.get("exp_scale", "1.0").rstrip("fF"))))
    if stable:
        norm_t = _config_type(call, "inp_norm_t")
        table = _exp_table(call.layer, exp_size, norm_t, scale, True, exp_t)
        d = cast(_max_tree(x)[..., None] - x, norm_t)  # inp_norm_t d = x_max - data[i]: rounds/wraps by its modes
        exp_res = table[_slice_index(d, norm_t, exp_size)]
    else:
        table = _exp_table(call.layer, exp_size, x_t, scale, False, exp_t)
        exp_res = table[_slice_index(x, x_t, exp_size)]
    exp_res = convert(exp_res, exp_t, acc_t)
    exp_sum = convert(_sum_tree(call.layer, exp_res, acc_t), acc_t, inv_inp_t)
    inv = _invert_table(call.layer, inv_size, inv_inp_t, inv_t)[_slice_index(exp_sum, inv_inp_t, inv_size)]
    return _product(exp_res, acc_t, inv[..., None], inv_t, out_t)


def _softmax_legacy(call: Call, x: np.ndarray, x_t: FixedType, out_t: FixedType, stream: bool) -> np.ndarray:
    """softmax_legacy on slices x (..., n): exp(x_j - x_i) summed over j per i in table_t, then 1/sum by table."""
    table_t = _config_type(call, "table_t")
    if stream:  # the stream version sizes both tables by table_size
        exp_size = inv_size = _config_int(call, "table_size")
    else:
        exp_size, inv_size = _config_int(call, "exp_table_size"), _config_int(call, "inv_table_size")
    exp_table = _range_table(call.layer, "exp_legacy", exp_size, table_t)
    inv_table = _range_table(call.layer, "inv_legacy", inv_size, table_t)
    n = x.shape[-1]
    diff = x[..., None, :] - x[..., :, None]  # [..., i, j] = data[j] - data[i]: exact in the ap minus type
    diff_t = _plus_type(x_t, x_t)
    index = _wrap32(_scaled_int(diff, FixedType(diff_t.width, diff_t.integer, True), exp_size, 16)
                    + (8 * exp_size) // 16)
    index = np.where(index < 0, 0, index)
    index = np.where(index > exp_size - 1, exp_size - 1, index)
    terms = exp_table[index]
    one = cast(np.array([1.0]), table_t)[0]
    eye = np.eye(n, dtype=bool)
    terms = np.where(eye, one, terms)
    acc = np.zeros(x.shape)
    for j in range(n):  # exp_res[ii] += exp_diff_res, in table_t, jj in order
        acc = cast(acc + terms[..., j], table_t)
    inv_index = _scaled_int(acc, table_t, inv_size, 64)
    inv_index = np.where(inv_index < 0, 0, inv_index)
    inv_index = np.where(inv_index > inv_size - 1, inv_size - 1, inv_index)
    return convert(inv_table[inv_index], table_t, out_t)


def _softmax_argmax(x: np.ndarray, out_t: FixedType) -> np.ndarray:
    idx = np.argmax(x, axis=-1)  # the first maximum, as `data[i] > maximum`
    one, zero = (cast(np.array([c]), out_t)[0] for c in (1.0, 0.0))
    hot = np.arange(x.shape[-1]) == idx[..., None]
    return np.where(hot, one, zero)


def _softmax_slices(call: Call, x: np.ndarray) -> np.ndarray:
    impl = call.config.raw.get("implementation", "").rsplit("::", 1)[-1]
    x_t, out_t = _in_t(call), _out_t(call)
    if impl in ("latency", "stable"):
        return _softmax_table(call, x, x_t, out_t, impl == "stable")
    if impl == "legacy":
        return _softmax_legacy(call, x, x_t, out_t, _stream(call))
    if impl == "argmax":
        return _softmax_argmax(x, out_t)
    raise EngineUnsupported(f"{call.layer}: softmax implementation {impl or 'unknown'!r} is not reproduced")


@kernel("softmax", "softmax_multidim")
def softmax(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    x = xs[0]
    n_rows, n_in = x.shape
    if _stream(call):  # every stream word is one slice (softmax asserts axis == -1)
        size = _word(call, 0)
        if _word(call, 1) != size or n_in % size:
            raise EngineUnsupported(f"{call.layer}: stream words of {size} inputs and {_word(call, 1)} outputs")
        return [_softmax_slices(call, x.reshape(n_rows, n_in // size, size)).reshape(n_rows, n_in)]
    cfg = call.config
    n_slice = cfg["n_slice"]
    n_outer, n_inner = (cfg.get("n_outer", 1), cfg.get("n_inner", 1)) if call.function == "softmax_multidim" else (1, 1)
    if call.function == "softmax" and n_slice != n_in:
        raise EngineUnsupported(f"{call.layer}: softmax over {n_slice} of {n_in} values")
    if n_outer * n_slice * n_inner != n_in:
        raise EngineUnsupported(f"{call.layer}: {n_outer} x {n_slice} x {n_inner} slices of {n_in} values")
    blocks = x.reshape(n_rows, n_outer, n_slice, n_inner).transpose(0, 1, 3, 2)  # slice axis last
    y = _softmax_slices(call, blocks)
    return [y.transpose(0, 1, 3, 2).reshape(n_rows, n_in)]


# ------------------------------------------------------------------------------------------------ accelc's extensions


@kernel("clip")
def clip(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    """nnet_clip.h: the bounds cast into data_T, `x < lo ? lo : x > hi ? hi : x`, returned as res_T."""
    x, x_t = xs[0], _in_t(call)
    raw = call.config.raw
    flags = {k: raw.get(k, "false") == "true" for k in ("has_min", "has_max")}
    bounds = {}
    for key in ("min", "max"):
        text = raw.get(key, "0.").strip()
        if not _NUMBER.match(text):
            raise EngineUnsupported(f"{call.layer}: clip bound {key} = {text!r}")
        bounds[key] = float(_to_type(np.array([float(text.rstrip("fFlL"))]), x_t)[0])
    hi_mask = (x > bounds["max"]) if flags["has_max"] else np.zeros(x.shape, bool)
    lo_mask = (x < bounds["min"]) if flags["has_min"] else np.zeros(x.shape, bool)
    y = np.where(lo_mask, bounds["min"], np.where(hi_mask, bounds["max"], x))
    return [convert(y, x_t, _out_t(call))]


@kernel("logsoftmax")
def logsoftmax(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    """nnet_logsoftmax.h, all in float: x - max, expf, a float sum in order, logf, (x - max) - log_sum."""
    x = xs[0]
    n_rows, n_in = x.shape
    cfg = call.config
    n_slice, n_inner = cfg["n_slice"], cfg.get("n_inner", 1)
    if n_in % (n_slice * n_inner):
        raise EngineUnsupported(f"{call.layer}: {n_in} values in slices of {n_slice} x {n_inner}")
    if _stream(call) and (n_inner != 1 or _word(call, 0) != n_slice or _word(call, 1) != n_slice):
        raise EngineUnsupported(f"{call.layer}: io_stream logsoftmax needs one slice per stream word")
    blocks = x.reshape(n_rows, n_in // (n_slice * n_inner), n_slice, n_inner).transpose(0, 1, 3, 2)
    xf = blocks.astype(np.float32)  # static_cast<float>: round to nearest even, as numpy
    x_max = xf[..., 0]
    for j in range(1, n_slice):
        x_max = np.where(xf[..., j] > x_max, xf[..., j], x_max)
    shifted = xf - x_max[..., None]  # float subtraction
    e = _libm_apply("expf", shifted)
    total = np.zeros(x_max.shape, dtype=np.float32)
    for j in range(n_slice):
        total = total + e[..., j]
    log_sum = _libm_apply("logf", total)
    yf = shifted - log_sum[..., None]
    y = _to_type(yf, _out_t(call))
    return [y.transpose(0, 1, 3, 2).reshape(n_rows, n_in)]
