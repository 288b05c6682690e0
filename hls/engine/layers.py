"""The hls4ml layer functions (nnet::*) in numpy, one per function myproject.cpp calls.

Every kernel takes the Call (config, types, weights as written) and its input arrays — float64 values of the
input types, one row per sample, flattened in the C++ order (channels last) — and returns its outputs the same
way. What a kernel cannot reproduce exactly it refuses with EngineUnsupported, naming the layer.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from accelc.hls.engine.arith import accumulate, accumulate_depthwise
from accelc.hls.engine.fixed import EngineUnsupported, FixedType, cast, cast_int_codes, convert
from accelc.hls.engine.project import Call, Config
from accelc.hls.engine.registry import KERNELS, Kernel, kernel  # noqa: F401 - KERNELS re-exported


def out_type(call: Call):
    return call.type(call.template[-2])


def in_type(call: Call, i: int = 0):
    return call.type(call.template[i])


def _product_is_plain(call: Call, cfg: Config) -> None:
    """The kernel multiplies as x * w: nnet::product::mult, or weight_ternary (0, -x or x: the same numbers, as its
    weights are -1, 0 and 1). Binary/xnor products compute something else and are refused."""
    product = cfg.usings.get("product", "nnet::product::mult<x_T, y_T>")
    if product.startswith("nnet::product::weight_ternary<"):
        w, _ = call.weight(0)
        if np.isin(w, (-1.0, 0.0, 1.0)).all():
            return
    if not product.startswith("nnet::product::mult<"):
        raise EngineUnsupported(f"{call.layer}: product {product} (binary/xnor arithmetic) is not reproduced")


def _dense_weights(call: Call, cfg: Config, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_in, n_out) weights and the bias: hls4ml stores Resource-strategy weights transposed (n_out, n_in).
    Kept C-contiguous per call: a transposed view sends numpy's matmul down a path 300x slower than BLAS."""
    if "dense" not in call.cache:
        w, _ = call.weight(0)
        b, _ = call.weight(1)
        strategy = cfg.raw.get("strategy", "nnet::latency").removeprefix("nnet::")
        if strategy == "latency":
            w = w.reshape(n_in, n_out)
        elif strategy in ("resource", "resource_unrolled"):
            w = w.reshape(n_out, n_in).T
        else:
            raise EngineUnsupported(f"{call.layer}: dense strategy {strategy} is not reproduced")
        call.cache["dense"] = (np.ascontiguousarray(w), b)
    return call.cache["dense"]


def _dense_rows(call: Call, cfg: Config, x: np.ndarray, x_t) -> np.ndarray:
    """The dense kernel of `cfg` (a dense_config) on rows x: accumulate, then cast to the result type."""
    _product_is_plain(call, cfg)
    n_in, n_out = cfg["n_in"], cfg["n_out"]
    w, b = _dense_weights(call, cfg, n_in, n_out)
    acc_t = call.config_type("accum_t", cfg)
    return accumulate(x, w, b, x_t, call.config_type("weight_t", cfg), acc_t, call.layer, out_type(call))


@kernel("dense")
def dense(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    return [_dense_rows(call, call.config, xs[0], in_type(call))]


def _image(call: Call, x: np.ndarray, cfg: Config) -> np.ndarray:
    h = cfg.get("in_height", 1)
    return x.reshape(x.shape[0], h, cfg["in_width"], cfg["n_chan"])


def _windows(call: Call, img: np.ndarray, cfg: Config, pad_value: float = 0.0) -> np.ndarray:
    """(N, OH, OW, FH, FW, C) windows at the config's strides, padding with pad_value."""
    fh, fw = cfg.get("filt_height", 1), cfg["filt_width"]
    sh, sw = cfg.get("stride_height", 1), cfg["stride_width"]
    pads = ((cfg.get("pad_top", 0), cfg.get("pad_bottom", 0)), (cfg.get("pad_left", 0), cfg.get("pad_right", 0)))
    if any(p for pair in pads for p in pair):
        img = np.pad(img, ((0, 0), *pads, (0, 0)), constant_values=pad_value)
    oh, ow = cfg.get("out_height", 1), cfg["out_width"]
    if fh == fw == 1:  # a 1x1 window is the pixel itself: no window copy
        win = img[:, ::sh, ::sw][:, :oh, :ow, None, None, :]
    else:
        win = sliding_window_view(img, (fh, fw), axis=(1, 2))[:, ::sh, ::sw]  # N, OH, OW, C, FH, FW
        win = win[:, :oh, :ow].transpose(0, 1, 2, 4, 5, 3)
    if win.shape[1] < oh or win.shape[2] < ow:
        raise EngineUnsupported(f"{call.layer}: output {oh}x{ow} larger than the windows {win.shape[1:3]}")
    return win


@kernel("conv_1d_cl", "conv_2d_cl", "pointwise_conv_1d_cl", "pointwise_conv_2d_cl")
def conv(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    cfg = call.config
    mult = call.nested("mult_config")
    if mult.get("n_in") != cfg.get("filt_height", 1) * cfg["filt_width"] * cfg["n_chan"]:
        raise EngineUnsupported(f"{call.layer}: kernel size does not match the dense kernel's n_in")
    win = _windows(call, _image(call, xs[0], cfg), cfg)
    n, oh, ow = win.shape[:3]
    rows = np.ascontiguousarray(win).reshape(n * oh * ow, -1)
    y = _dense_rows(call, mult, rows, in_type(call))
    return [y.reshape(n, -1)]


@kernel("depthwise_conv_1d_cl", "depthwise_conv_2d_cl")
def depthwise_conv(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    cfg = call.config
    mult = call.nested("mult_config") if "mult_config" in cfg.types else cfg
    _product_is_plain(call, mult)
    win = _windows(call, _image(call, xs[0], cfg), cfg)
    n, oh, ow, fh, fw, c = win.shape
    rows = np.ascontiguousarray(win).reshape(n * oh * ow, fh * fw, c)
    w, _ = call.weight(0)
    b, _ = call.weight(1)
    acc_t = call.config_type("accum_t", mult)
    acc = accumulate_depthwise(rows, w.reshape(fh * fw, c), b, in_type(call), call.config_type("weight_t", mult),
                               acc_t, call.layer)
    return [convert(acc, acc_t, out_type(call)).reshape(n, -1)]


@kernel("pooling1d_cl", "pooling2d_cl")
def pooling(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    cfg = call.config
    op = cfg.raw.get("pool_op", "").removeprefix("nnet::")
    acc_t, x_t = call.config_type("accum_t"), in_type(call)
    stream = call.project.is_stream(call.template[0])
    if op != "Max":
        raise EngineUnsupported(f"{call.layer}: {op or 'unknown'} pooling is not reproduced")
    lowest = x_t.lo_code * x_t.lsb  # hls4ml's pad value for max pooling: the type's most negative value
    shape = _PoolShape(cfg)
    win = _windows(call, _image(call, xs[0], shape), shape, pad_value=lowest)
    n = win.shape[0]
    flat = win.reshape(*win.shape[:3], -1, win.shape[-1])
    # io_stream casts the window into accum_t before the max; io_parallel takes the max of the inputs
    y = convert(flat, x_t, acc_t).max(axis=3) if stream else convert(flat.max(axis=3), x_t, acc_t)
    return [convert(y, acc_t, out_type(call)).reshape(n, -1)]


class _PoolShape(Config):
    """A pooling config seen as a conv config (pool sizes as filter sizes, n_filt as channels)."""

    def __init__(self, cfg: Config) -> None:
        ints = dict(cfg.ints)
        ints["filt_height"] = cfg.get("pool_height", 1)
        ints["filt_width"] = cfg["pool_width"]
        ints["n_chan"] = cfg["n_filt"]
        ints.setdefault("in_width", cfg.get("n_in"))  # pooling1d_config names the width n_in / n_out
        ints.setdefault("out_width", cfg.get("n_out"))
        super().__init__(cfg.name, cfg.base, ints, cfg.raw, cfg.types, cfg.usings, cfg.arrays)


@kernel("normalize")
def normalize(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    cfg = call.config
    _product_is_plain(call, cfg)
    scale, s_t = call.weight(0)
    bias, b_t = call.weight(1)
    x, x_t = xs[0], in_type(call)
    n_filt = cfg.get("n_filt", -1)
    reps = x.shape[1] // scale.size
    if n_filt not in (-1, 0) and n_filt != scale.size or reps * scale.size != x.shape[1]:
        raise EngineUnsupported(f"{call.layer}: batchnorm over {x.shape[1]} values with {scale.size} scales")
    frac = max(x_t.frac + s_t.frac, b_t.frac)
    top = max(x_t.integer + s_t.integer, b_t.integer) + 1
    if top + frac <= 52:
        y = x * np.tile(scale, reps) + np.tile(bias, reps)  # exact: the product and the sum fit float64
        return [cast(y, out_type(call))]
    # wider (e.g. a QDQ scale with many fraction bits): the same sum in Python integers at `frac` fraction bits
    codes = [np.rint(v * 2.0**f).astype(np.int64).astype(object)
             for v, f in ((x, x_t.frac), (np.tile(scale, reps), s_t.frac), (np.tile(bias, reps), b_t.frac))]
    acc = codes[0] * codes[1] * (1 << (frac - x_t.frac - s_t.frac)) + codes[2] * (1 << (frac - b_t.frac))
    return [cast_int_codes(acc, frac, out_type(call))]


@kernel("relu")
def relu(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    return [convert(np.maximum(xs[0], 0.0), in_type(call), out_type(call))]


@kernel("linear")
def linear(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    return [convert(xs[0], in_type(call), out_type(call))]


@kernel("clone_stream")
def clone(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    y = convert(xs[0], in_type(call), call.type(call.template[1]))
    return [y for _ in call.outputs]  # arrays are never written in place: one copy serves every branch


@kernel("repack_stream")
def repack(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    return [convert(xs[0], in_type(call), call.type(call.template[1]))]


@kernel("transpose")
def transpose(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    arrays = call.config.arrays
    if not {"from_shape", "perm"} <= set(arrays):
        raise EngineUnsupported(f"{call.layer}: transpose without from_shape/perm")
    x = xs[0].reshape(xs[0].shape[0], *arrays["from_shape"])
    y = x.transpose(0, *[p + 1 for p in arrays["perm"]])
    return [convert(y.reshape(x.shape[0], -1), in_type(call), out_type(call))]


@kernel("zeropad1d_cl", "zeropad2d_cl")
def zeropad(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    cfg = call.config
    img = _image(call, xs[0], cfg)
    pads = ((cfg.get("pad_top", 0), cfg.get("pad_bottom", 0)), (cfg["pad_left"], cfg["pad_right"]))
    y = np.pad(img, ((0, 0), *pads, (0, 0))).reshape(img.shape[0], -1)
    return [convert(y, in_type(call), out_type(call))]


def _merge_inputs(call: Call, xs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    cfg = call.config
    n, n1, n2 = cfg["n_elem"], cfg.get("n_elem1", xs[0].shape[1]), cfg.get("n_elem2", xs[1].shape[1])
    idx = np.arange(n)
    # data1[ii % n_elem1]: broadcasting as the C++ indexes it (no copy where the sizes are equal)
    return tuple(x if m == n else x[:, idx % m] for x, m in ((xs[0], n1), (xs[1], n2)))


_MERGES = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "maximum": np.maximum,
           "minimum": np.minimum, "average": lambda a, b: (a + b) * 0.5}


def _merge(name: str) -> Kernel:
    op = _MERGES[name]

    def run(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
        a, b = _merge_inputs(call, xs)
        ta, tb = in_type(call, 0), in_type(call, 1)
        frac = ta.frac + tb.frac if name == "multiply" else max(ta.frac, tb.frac) + (name == "average")
        integer = ta.integer + tb.integer if name == "multiply" else max(ta.integer, tb.integer) + 1
        if frac + integer > 52:
            raise EngineUnsupported(f"{call.layer}: {name} of {ta} and {tb} beyond float64")
        exact = FixedType(frac + integer, integer)  # a type holding every exact result
        return [convert(op(a, b), exact, call.type(call.template[2]))]

    return run


for _name in _MERGES:
    KERNELS[_name] = _merge(_name)


@kernel("concatenate1d", "concatenate2d", "concatenate3d")
def concatenate(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    cfg = call.config
    dims = int(call.function[-2])
    shapes = []
    for k in (1, 2):
        keys = [f"n_elem{k}_{d}" for d in range(dims)]
        if not all(key in cfg.ints for key in keys):
            raise EngineUnsupported(f"{call.layer}: concatenate without its input shapes")
        shapes.append([cfg[key] for key in keys])
    axis = cfg.get("axis", dims)
    axis = axis if axis > 0 else dims + axis + 1 if axis < 0 else axis
    a = xs[0].reshape(xs[0].shape[0], *shapes[0])
    b = xs[1].reshape(xs[1].shape[0], *shapes[1])
    y = np.concatenate([a, b], axis=axis if axis >= 1 else 1)
    return [cast(y.reshape(y.shape[0], -1), call.type(call.template[2]))]



@kernel("resize_nearest")
def resize_nearest(call: Call, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Nearest-neighbour upsampling (nnet_image.h): io_parallel maps output index j to input index
    (j * ((W << 16) / W_new + 1)) >> 16; io_stream repeats each pixel W_new / W times (integer ratios only)."""
    cfg = call.config
    h, w, c = cfg.get("height", 1), cfg["width"], cfg["n_chan"]
    nh, nw = cfg.get("new_height", 1), cfg["new_width"]
    img = xs[0].reshape(xs[0].shape[0], h, w, c)
    if call.project.is_stream(call.template[0]):
        if nh % h or nw % w:
            raise EngineUnsupported(f"{call.layer}: io_stream resize by a non-integer ratio")
        rows, cols = np.arange(nh) // (nh // h), np.arange(nw) // (nw // w)
    else:
        rows = (np.arange(nh) * (((h << 16) // nh) + 1)) >> 16
        cols = (np.arange(nw) * (((w << 16) // nw) + 1)) >> 16
    return [img[:, rows][:, :, cols].reshape(img.shape[0], -1)]  # data_T in and out: no cast
