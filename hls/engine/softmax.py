"""hls4ml's softmax in numpy, bit for bit, every softmax_implementation (latency, stable, legacy, argmax): the
table index from the bits of the input (softmax_idx_from_real_val), the adder tree of nnet::reduce with each
partial sum cast into accum_t, and the casts into inp_norm_t / inv_inp_t by their modes."""

from __future__ import annotations

import numpy as np

from accelc.hls.engine.act_common import (
    _config_int,
    _config_type,
    _exp_table,
    _in_t,
    _invert_table,
    _out_t,
    _plus_type,
    _product,
    _range_table,
    _scaled_int,
    _slice_index,
    _stream,
    _word,
    _wrap32,
)
from accelc.hls.engine.fixed import EXACT_BITS, EngineUnsupported, FixedType, cast, convert
from accelc.hls.engine.project import Call
from accelc.hls.engine.registry import kernel

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


