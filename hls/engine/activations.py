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
Softmax (accelc.hls.engine.softmax; every softmax_implementation) additionally reproduces the bit slicing of
softmax_idx_from_real_val,
the adder tree of nnet::reduce (each partial sum cast into accum_t, so saturating accumulators are exact too)
and the casts into inp_norm_t / inv_inp_t, which wrap or saturate by their modes.

Where io_stream computes differently from io_parallel (selu's lambda type and index clamp, ternary_tanh's
threshold, legacy softmax's table sizes, softmax's slices being stream words), the kernel branches on
`call.project.is_stream`.
"""

from __future__ import annotations

import numpy as np

from accelc.hls.engine.act_common import (
    _NUMBER,
    _bits,
    _config_int,
    _config_type,
    _in_t,
    _libm_apply,
    _literal_arg,
    _mult_type,
    _out_t,
    _plus_type,
    _product,
    _range_table,
    _scaled_int,
    _static_member,
    _stream,
    _to_type,
    _uint_gt,
    _word,
    _wrap32,
)
from accelc.hls.engine.fixed import EXACT_BITS, EngineUnsupported, FixedType, cast, convert
from accelc.hls.engine.project import _ARRAY_T, Call
from accelc.hls.engine.registry import kernel

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


def _table_kernel(kind: str, span: int):
    def run(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [_lookup(call, xs[0], kind, span)]

    return run


# The plain lookup-table functions and the input span their table covers (sigmoid: [-8, 8), tanh: [-4, 4), ...).
for _kind, _span in (("sigmoid", 16), ("tanh", 8), ("softplus", 16), ("softsign", 16)):
    kernel(_kind)(_table_kernel(_kind, _span))


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
    out_decl = call.project.declaration(call.template[-2])
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

