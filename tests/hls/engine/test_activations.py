"""accelc.hls.engine.activations against hls4ml's activation headers (and accelc's nnet_clip.h / nnet_logsoftmax.h),
bit for bit.

Two halves:
  - a synthetic project: one g++ build of a program that runs ~50 activation layers, io_parallel and io_stream,
    written exactly as hls4ml writes them (config structs, typedefs, call lines), over every input code of
    their types (elementwise functions) or over random slices plus edge rows (softmax); configurations
    hls4ml's defaults never reach are included on purpose (narrow saturating accumulators, a wrapping
    inp_norm_t, table sizes that are no power of two or that g++ could fold, 32-bit index overflow, results
    that cannot hold 1). The kernels run on the same inputs (Project reads the written files) and must give
    the same float64 values.
  - accelc.compile'd models (the real fpga flow): the engine's trace against the C simulation's, on inputs at
    several ranges; softmax's four implementations by rewriting the written config.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import accelc
import accelc.hls.engine.activations  # noqa: F401 - registers the activation kernels
from accelc.hls.emulate import DEFAULT_OPT_FLAG, load_emulator
from accelc.hls.engine import Engine, EngineUnsupported
from accelc.hls.engine.fixed import FixedType, parse_type
from accelc.hls.engine.kernels import KERNELS
from accelc.hls.engine.project import Project

needs_gpp = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def _hls4ml_templates() -> Path:
    spec = importlib.util.find_spec("hls4ml")
    assert spec is not None and spec.submodule_search_locations, "hls4ml is a dependency"
    return Path(next(iter(spec.submodule_search_locations))) / "templates" / "vivado"


def _extension_headers() -> list[Path]:
    spec = importlib.util.find_spec("accelc.hls.extensions")
    assert spec is not None and spec.submodule_search_locations
    return sorted(Path(next(iter(spec.submodule_search_locations))).glob("nnet_*.h"))

# ------------------------------------------------------------------------------------------ the synthetic layers

T18 = "ap_fixed<18,5,AP_RND,AP_SAT>"
SM_IN = "ap_fixed<18,2,AP_RND,AP_SAT>"


@dataclass
class Layer:
    """One activation layer of the synthetic project. `config` is the struct body; `inputs`: 'all' (every code
    of the input type), 'random' (random codes and the range ends) or 'slices' (softmax rows)."""

    name: str
    func: str
    in_t: str
    out_t: str
    config: str
    n_in: int
    io: str = "parallel"
    word: int = 0
    base: str = "nnet::activ_config"
    param: tuple[str, str] | None = None  # (param_t, the literal argument)
    weights: tuple[str, np.ndarray] | None = None  # (type, values): prelu's alpha, unary_lut's table
    statics: str = ""  # definitions after the struct (hard_sigmoid's slope and shift)
    inputs: str = "all"
    rows: int = 64


def _activ(n_in: int, table_size: int = 1024, table_t: str = "ap_fixed<18,8>", io: str = "parallel",
           param_t: bool = False) -> str:
    body = (f"    static const unsigned n_in = {n_in};\n    static const unsigned table_size = {table_size};\n"
            f"    static const unsigned io_type = nnet::io_{io};\n    static const unsigned reuse_factor = 1;\n"
            f"    typedef {table_t} table_t;\n")
    return body + ("    typedef {name}_p_t param_t;\n" if param_t else "")


def _hard(n_in: int, io: str) -> str:
    return (f"    static const unsigned n_in = {n_in};\n    static const {{name}}_slope_t slope;\n"
            f"    static const {{name}}_shift_t shift;\n    static const unsigned io_type = nnet::io_{io};\n"
            f"    static const unsigned reuse_factor = 1;\n")


def _softmax(n_in: int, impl: str, io: str = "parallel", n_outer: int = 1, n_inner: int = 1, exp_size: int = 4096,
             inv_size: int = 4096, exp_t: str = "ap_fixed<18,8,AP_RND,AP_SAT>",
             inv_t: str = "ap_ufixed<18,1,AP_RND,AP_SAT>", accum_t: str = "ap_fixed<26,6>",
             inv_inp_t: str = "ap_ufixed<18,5,AP_RND,AP_SAT>", inp_norm_t: str = "ap_ufixed<17,1>",
             exp_scale: str = "1.0") -> str:
    n_slice = n_in // n_outer // n_inner
    return (f"    static const unsigned n_in = {n_in};\n    static const unsigned n_slice = {n_slice};\n"
            f"    static const unsigned n_outer = {n_outer};\n    static const unsigned n_inner = {n_inner};\n"
            f"    static const unsigned parallelization_factor = -1;\n"
            f"    static const unsigned exp_table_size = {exp_size};\n"
            f"    static const unsigned inv_table_size = {inv_size};\n"
            f"    static const unsigned io_type = nnet::io_{io};\n    static const unsigned reuse_factor = 1;\n"
            f"    static const unsigned axis = -1;\n"
            f"    static const nnet::softmax_implementation implementation = nnet::softmax_implementation::{impl};\n"
            f"    static constexpr float exp_scale = {exp_scale};\n    typedef {exp_t} exp_table_t;\n"
            f"    typedef {inv_t} inv_table_t;\n    typedef {accum_t} accum_t;\n    typedef {inv_inp_t} inv_inp_t;\n"
            f"    typedef {inp_norm_t} inp_norm_t;\n")


def _clip(n_in: int, lo: float | None, hi: float | None, io: str) -> str:
    return (f"    static const unsigned n_in = {n_in};\n"
            f"    static const bool has_min = {'true' if lo is not None else 'false'};\n"
            f"    static const bool has_max = {'true' if hi is not None else 'false'};\n"
            f"    static constexpr double min = {lo or 0.0!r};\n    static constexpr double max = {hi or 0.0!r};\n"
            f"    static const unsigned io_type = nnet::io_{io};\n    static const unsigned reuse_factor = 1;\n")


def _logsoftmax(n_in: int, n_slice: int, n_inner: int, io: str) -> str:
    return (f"    static const unsigned n_in = {n_in};\n    static const unsigned n_slice = {n_slice};\n"
            f"    static const unsigned n_inner = {n_inner};\n    static const unsigned io_type = nnet::io_{io};\n"
            f"    static const unsigned reuse_factor = 1;\n")


def _layers() -> list[Layer]:
    rng = np.random.default_rng(7)
    out: list[Layer] = []
    for io in ("parallel", "stream"):
        s = io[0]
        w = {"io": io, "word": 8 if io == "stream" else 0}
        for func in ("sigmoid", "tanh", "softplus", "softsign"):
            out.append(Layer(f"{func}_{s}", func, T18, "ap_fixed<18,2,AP_RND,AP_SAT>", _activ(1024, io=io), 1024, **w))
        out += [
            Layer(f"sigmoid_narrow_{s}", "sigmoid", "ap_fixed<14,9>", "ap_ufixed<10,0,AP_RND_CONV,AP_SAT>",
                  _activ(1024, 2048, "ap_ufixed<12,0,AP_RND,AP_SAT>", io), 1024, **w),
            Layer(f"tanh_odd_{s}", "tanh", "ap_fixed<12,4,AP_TRN,AP_WRAP>", "ap_fixed<10,2,AP_RND,AP_SAT>",
                  _activ(1024, 1000, "ap_fixed<10,2,AP_RND,AP_SAT>", io), 1024, **w),
            Layer(f"softplus_rnd_{s}", "softplus", "ap_fixed<16,6>", "ap_ufixed<16,6,AP_RND,AP_SAT>",
                  _activ(1024, 1000, "ap_ufixed<16,6,AP_RND,AP_SAT>", io), 1024, **w),
            Layer(f"elu_{s}", "elu", T18, T18, _activ(1024, io=io, param_t=True), 1024, param=("ap_ufixed<1,1>", "1.0"),
                  **w),
            Layer(f"elu_alpha_{s}", "elu", "ap_fixed<16,6>", "ap_fixed<16,6,AP_RND,AP_SAT>",
                  _activ(1024, 2048, "ap_fixed<18,8,AP_RND,AP_SAT>", io, param_t=True), 1024,
                  param=("ap_fixed<10,2,AP_RND>", "0.30000001192092896"), **w),
            Layer(f"elu_wide_{s}", "elu", "ap_fixed<40,34>", "ap_fixed<40,34>", _activ(1024, io=io, param_t=True), 1024,
                  param=("ap_ufixed<1,1>", "1.0"), inputs="random", **w),
            Layer(f"selu_{s}", "selu", T18, T18, _activ(1024, io=io), 1024, **w),
            Layer(f"selu_wide_{s}", "selu", "ap_fixed<40,34>", "ap_fixed<44,38>", _activ(1024, io=io), 1024,
                  inputs="random", **w),
            Layer(f"leaky_relu_{s}", "leaky_relu", T18, T18, _activ(1024, io=io, param_t=True), 1024,
                  param=("ap_ufixed<8,-3>", "0.10000000149011612"), **w),
            Layer(f"thresholded_relu_{s}", "thresholded_relu", T18, "ap_fixed<12,5,AP_RND,AP_SAT>",
                  _activ(1024, io=io, param_t=True), 1024, param=(T18, "0.30000001192092896"), **w),
            Layer(f"prelu_{s}", "prelu", T18, T18, _activ(1024, io=io), 1024,
                  weights=("ap_fixed<8,1>", np.round(rng.uniform(-1, 1, 1024) * 128) / 128), **w),
            Layer(f"hard_sigmoid_{s}", "hard_sigmoid", T18, "ap_fixed<18,3,AP_RND,AP_SAT>", _hard(1024, io), 1024,
                  base="", statics="0.20000000298023224|0.5|ap_ufixed<17,1>|ap_ufixed<17,1>", **w),
            Layer(f"hard_sigmoid_wrap_{s}", "hard_sigmoid", "ap_fixed<10,4>", "ap_fixed<8,1,AP_RND>", _hard(1024, io),
                  1024, base="", statics="0.16666666666666666|0.5|ap_ufixed<16,0>|ap_ufixed<2,0>", **w),
            Layer(f"hard_tanh_{s}", "hard_tanh", T18, "ap_fixed<18,3,AP_RND,AP_SAT>", _hard(1024, io), 1024, base="",
                  statics="0.5|0.5|ap_ufixed<17,1>|ap_ufixed<17,1>", **w),
            Layer(f"binary_tanh_{s}", "binary_tanh", "ap_fixed<12,4>",
                  "ap_uint<1>" if io == "parallel" else "ap_fixed<2,2>", _activ(1024, io=io), 1024, **w),
            Layer(f"ternary_tanh_{s}", "ternary_tanh", "ap_fixed<8,2>", "ap_fixed<2,2>", _activ(256, io=io), 256, **w),
            Layer(f"ternary_tanh_sat_{s}", "ternary_tanh", "ap_fixed<8,2,AP_TRN,AP_SAT>", "ap_fixed<4,2>",
                  _activ(256, io=io), 256, **w),
            Layer(f"unary_lut_{s}", "unary_lut", "ap_fixed<8,3>", "ap_fixed<10,4>",
                  _activ(256, 256, "ap_fixed<12,4>", io), 256,
                  weights=("ap_fixed<12,4>", np.round(rng.uniform(-8, 8, 256) * 256) / 256), **w),
            Layer(f"clip_{s}", "clip", T18, "ap_fixed<18,3,AP_RND,AP_SAT>", _clip(1024, -0.5, 1.0, io), 1024,
                  base="nnet::clip_config", **w),
            Layer(f"clip_max_{s}", "clip", "ap_fixed<8,3,AP_RND>", "ap_fixed<6,2>", _clip(256, None, 0.7, io), 256,
                  base="nnet::clip_config", **w),
            Layer(f"clip_min_{s}", "clip", "ap_fixed<8,3,AP_RND,AP_SAT>", "ap_fixed<8,3>", _clip(256, -1.3, None, io),
                  256, base="nnet::clip_config", **w),
            Layer(f"logsoftmax_{s}", "logsoftmax", T18, "ap_fixed<18,6,AP_RND,AP_SAT>", _logsoftmax(10, 10, 1, io), 10,
                  base="nnet::logsoftmax_config", inputs="slices", rows=400, io=io, word=10 if io == "stream" else 0),
        ]
        sw = {"io": io, "word": 16 if io == "stream" else 0, "inputs": "slices", "rows": 400}
        out += [
            # as accelc writes it (its handler's inverse table types; inp_norm_t as hls4ml derives it: wraps)
            Layer(f"softmax_stable_{s}", "softmax", SM_IN, SM_IN, _softmax(16 * (1 + (io == "stream")), "stable", io),
                  16 * (1 + (io == "stream")), **sw),
            # hls4ml's defaults, a wider input and a scaled exponent
            Layer(f"softmax_stable_hls_{s}", "softmax", "ap_fixed<16,6>", "ap_fixed<16,6>",
                  _softmax(16, "stable", io, exp_size=1024, inv_size=1024, inv_t="ap_fixed<18,8,AP_RND,AP_SAT>",
                           accum_t="ap_fixed<18,8>", inv_inp_t="ap_fixed<18,8,AP_RND,AP_SAT>",
                           inp_norm_t="ap_ufixed<15,5>", exp_scale="0.75"), 16, **sw),
            # a narrow saturating accumulator: the adder tree's order shows
            Layer(f"softmax_latency_{s}", "softmax", "ap_fixed<12,4>", "ap_fixed<16,2,AP_RND,AP_SAT>",
                  _softmax(16, "latency", io, exp_size=1024, inv_size=1024, accum_t="ap_fixed<14,6,AP_TRN,AP_SAT>",
                           inv_inp_t="ap_fixed<18,8,AP_RND,AP_SAT>", inv_t="ap_fixed<18,8,AP_RND,AP_SAT>"), 16, **sw),
            Layer(f"softmax_latency_wrap_{s}", "softmax", "ap_fixed<10,3>", "ap_ufixed<12,0,AP_RND,AP_SAT>",
                  _softmax(16, "latency", io, exp_size=512, inv_size=2048, accum_t="ap_fixed<20,6>",
                           inv_inp_t="ap_ufixed<14,6>"), 16, **sw),
            Layer(f"softmax_legacy_{s}", "softmax", "ap_fixed<16,6>", "ap_fixed<16,2,AP_RND,AP_SAT>",
                  _softmax(16, "legacy", io, exp_size=2048, inv_size=512), 16, **sw),
            Layer(f"softmax_argmax_{s}", "softmax", "ap_fixed<10,3>", "ap_fixed<8,2>", _softmax(16, "argmax", io),
                  16, **sw),
            # (res_T)1 in ap_fixed<4,1> wraps to -1
            Layer(f"softmax_argmax_wrap_{s}", "softmax", "ap_fixed<10,3>", "ap_fixed<4,1>",
                  _softmax(16, "argmax", io), 16, **sw),
        ]
    out += [
        Layer("sigmoid_odd_p", "sigmoid", "ap_fixed<16,6>", "ap_fixed<18,2,AP_RND,AP_SAT>", _activ(1024, 1000), 1024),
        Layer("sigmoid_wide_p", "sigmoid", "ap_fixed<40,34>", "ap_fixed<18,2,AP_RND,AP_SAT>", _activ(1024), 1024,
              inputs="random"),
        Layer("tanh_wide_s", "tanh", "ap_fixed<44,38,AP_RND,AP_SAT>", "ap_fixed<18,2>", _activ(1024, io="stream"), 1024,
              io="stream", word=8, inputs="random"),
        Layer("elu_default_p", "elu", T18, T18, _activ(1024), 1024),  # elu<data_T, res_T, CONFIG_T>: alpha = 1
        Layer("relu6_p", "relu6", "ap_fixed<12,5>", "ap_ufixed<8,3,AP_RND,AP_SAT>", _activ(1024), 1024),
        Layer("relu1_p", "relu1", "ap_fixed<12,5>", "ap_fixed<6,1>", _activ(1024), 1024),
        Layer("softmax_multidim_p", "softmax_multidim", SM_IN, SM_IN, _softmax(24, "stable", n_outer=2, n_inner=3), 24,
              inputs="slices", rows=300),
        Layer("softmax_multidim_legacy_p", "softmax_multidim", "ap_fixed<16,6>", "ap_fixed<16,2,AP_RND,AP_SAT>",
              _softmax(24, "legacy", n_outer=3, n_inner=2, exp_size=1024, inv_size=1024), 24, inputs="slices",
              rows=300),
        Layer("logsoftmax_inner_p", "logsoftmax", T18, "ap_fixed<16,6,AP_RND,AP_SAT>",
              _logsoftmax(24, 4, 3, "parallel"), 24, base="nnet::logsoftmax_config", inputs="slices", rows=300),
    ]
    return out


LAYERS = _layers()


def _values(t: FixedType, codes: np.ndarray) -> np.ndarray:
    return np.ldexp(codes.astype(np.float64), -t.frac)


def _inputs(layer: Layer) -> np.ndarray:
    """Exact values of the input type, (rows, n_in)."""
    t = parse_type(layer.in_t)
    rng = np.random.default_rng(zlib.crc32(layer.name.encode()))
    n = layer.n_in
    if layer.inputs == "all":
        codes = np.arange(t.lo_code, t.hi_code + 1, dtype=np.int64)
        codes = np.concatenate([codes, np.zeros((-codes.size) % n, dtype=np.int64)])
        return _values(t, codes).reshape(-1, n)
    if layer.inputs == "random":
        ends = [t.lo_code, t.lo_code + 1, -1, 0, 1, t.hi_code - 1, t.hi_code]
        codes = np.concatenate([ends, rng.integers(t.lo_code, t.hi_code + 1, size=layer.rows * n - len(ends))])
        # also every magnitude: x * 2^k for every bit length, both signs
        k = np.arange(t.width - 1)
        codes[len(ends):len(ends) + 2 * k.size] = np.concatenate([1 << k, -(1 << k)])
        return _values(t, codes).reshape(-1, n)
    # softmax slices: random codes at several spreads, and edge rows
    span = t.hi_code - t.lo_code
    rows = []
    for scale in (1.0, 0.25, 0.02, 0.002):
        centre = rng.integers(t.lo_code, t.hi_code + 1, size=(layer.rows // 4, 1))
        rows.append(np.clip(centre + rng.integers(-int(span * scale / 2) - 1, int(span * scale / 2) + 1,
                                                  size=(layer.rows // 4, n)), t.lo_code, t.hi_code))
    edge = [np.zeros(n), np.full(n, t.hi_code), np.full(n, t.lo_code), np.r_[t.hi_code, np.full(n - 1, t.lo_code)],
            np.r_[np.full(n - 1, t.lo_code), t.hi_code], np.tile([t.hi_code, t.lo_code], n)[:n], np.arange(n) - n // 2]
    rows.append(np.array(edge, dtype=np.int64))
    return _values(t, np.concatenate(rows).astype(np.int64))


# ------------------------------------------------------------------------------------------------ the C++ program

CPP_HEAD = r"""
#include <cstdio>
#include <vector>
#include "ap_fixed.h"
#include "hls_stream.h"
#include "nnet_utils/nnet_types.h"
#include "nnet_utils/nnet_helpers.h"
#include "nnet_utils/nnet_activation.h"
#include "nnet_utils/nnet_activation_stream.h"
#include "nnet_utils/nnet_clip.h"
#include "nnet_utils/nnet_logsoftmax.h"
#include "defines.h"
#include "parameters.h"

static std::vector<double> read_all(const char* path) {
    FILE* f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f) / sizeof(double);
    fseek(f, 0, SEEK_SET);
    std::vector<double> v(n);
    if (fread(v.data(), sizeof(double), n, f) != (size_t)n) exit(2);
    fclose(f);
    return v;
}

static void write_all(const char* path, const std::vector<double>& v) {
    FILE* f = fopen(path, "wb");
    fwrite(v.data(), sizeof(double), v.size(), f);
    fclose(f);
}
"""


def _cpp(t: str) -> str:
    return t.replace(">", " >")


def _project(layers: list[Layer], weights: Path) -> tuple[str, str, str]:
    """defines.h, parameters.h and myproject.cpp (the program) of the synthetic project."""
    defines, params, body, calls = ["#pragma once"], ["#pragma once"], [CPP_HEAD], []
    for ly in layers:
        n = ly.n_in
        if ly.io == "stream":
            defines += [f"typedef nnet::array<{_cpp(ly.in_t)}, {ly.word}> {ly.name}_in_t;",
                        f"typedef nnet::array<{_cpp(ly.out_t)}, {ly.word}> {ly.name}_out_t;"]
        else:
            defines += [f"typedef {ly.in_t} {ly.name}_in_t;", f"typedef {ly.out_t} {ly.name}_out_t;"]
        targs = [f"{ly.name}_in_t", f"{ly.name}_out_t", f"{ly.name}_config"]
        args = ["x", "y"]
        if ly.param is not None:
            defines.append(f"typedef {ly.param[0]} {ly.name}_p_t;")
            targs.insert(1, f"{ly.name}_p_t")
            args.insert(1, ly.param[1])
        load = ""
        if ly.weights is not None:
            wt, values = ly.weights
            defines.append(f"typedef {wt} {ly.name}_w_t;")
            (weights / f"{ly.name}.txt").write_text(", ".join(repr(float(v)) for v in values))
            load = (f"    static {ly.name}_w_t w_{ly.name}[{values.size}];\n"
                    f"    nnet::load_weights_from_txt<{ly.name}_w_t, {values.size}>(w_{ly.name}, \"{ly.name}.txt\");\n")
            if ly.func == "prelu":
                targs.insert(1, f"{ly.name}_w_t")
                args.insert(1, f"w_{ly.name}")
            else:  # unary_lut(data, res, table)
                args.append(f"w_{ly.name}")
        base = f" : {ly.base}" if ly.base else ""
        params.append(f"// {ly.name}\nstruct {ly.name}_config{base} {{\n{ly.config.format(name=ly.name)}}};")
        if ly.statics:
            slope, shift, slope_t, shift_t = ly.statics.split("|")
            defines += [f"typedef {slope_t} {ly.name}_slope_t;", f"typedef {shift_t} {ly.name}_shift_t;"]
            params += [f"const {ly.name}_slope_t {ly.name}_config::slope = {slope};",
                       f"const {ly.name}_shift_t {ly.name}_config::shift = {shift};"]
        call = f"        nnet::{ly.func}<{', '.join(targs)}>({', '.join(args)}); // {ly.name}"
        if ly.io == "parallel":
            body.append(
                f"static void run_{ly.name}() {{\n{load}"
                f"    std::vector<double> in = read_all(\"in_{ly.name}.bin\");\n    const size_t n = {n};\n"
                f"    std::vector<double> out(in.size());\n"
                f"    static {ly.name}_in_t x[{n}];\n    static {ly.name}_out_t y[{n}];\n"
                f"    for (size_t r = 0; r < in.size() / n; r++) {{\n"
                f"        for (size_t i = 0; i < n; i++) x[i] = in[r * n + i];\n{call}\n"
                f"        for (size_t i = 0; i < n; i++) out[r * n + i] = y[i].to_double();\n    }}\n"
                f"    write_all(\"out_{ly.name}.bin\", out);\n}}\n")
        else:
            body.append(
                f"static void run_{ly.name}() {{\n{load}"
                f"    std::vector<double> in = read_all(\"in_{ly.name}.bin\");\n    const size_t n = {n};\n"
                f"    const size_t k = {ly.word};\n    std::vector<double> out(in.size());\n"
                f"    for (size_t r = 0; r < in.size() / n; r++) {{\n"
                f"        hls::stream<{ly.name}_in_t> x;\n        hls::stream<{ly.name}_out_t> y;\n"
                f"        for (size_t w = 0; w < n / k; w++) {{\n            {ly.name}_in_t p;\n"
                f"            for (size_t j = 0; j < k; j++) p[j] = in[r * n + w * k + j];\n            x.write(p);\n"
                f"        }}\n{call}\n"
                f"        for (size_t w = 0; w < n / k; w++) {{\n            {ly.name}_out_t p = y.read();\n"
                f"            for (size_t j = 0; j < k; j++) out[r * n + w * k + j] = p[j].to_double();\n        }}\n"
                f"    }}\n    write_all(\"out_{ly.name}.bin\", out);\n}}\n")
        calls.append(f"    run_{ly.name}();")
    body += ["int main() {", *calls, "    return 0;", "}", ""]
    return "\n".join(defines) + "\n", "\n".join(params) + "\n", "\n".join(body)


class Synthetic:
    """The built and run synthetic project (a class, so that pytest does not print its arrays on a failure)."""

    def __init__(self, project: Project, inputs: dict, outputs: dict) -> None:
        self.project, self.inputs, self.outputs = project, inputs, outputs
        self.calls = {c.layer: c for c in project.calls}

    def __repr__(self) -> str:
        return f"<synthetic project: {len(self.calls)} layers>"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Synthetic:
    """One g++ build (the emulator's optimization flag) and one run of every synthetic layer."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    root = tmp_path_factory.mktemp("activations")
    fw = root / "firmware"
    (fw / "weights").mkdir(parents=True)
    (fw / "nnet_utils").mkdir()
    templates = _hls4ml_templates()
    for header in [*(templates / "nnet_utils").glob("*.h"), *_extension_headers()]:
        (fw / "nnet_utils" / header.name).symlink_to(header)
    defines, params, program = _project(LAYERS, fw / "weights")
    (fw / "defines.h").write_text(defines)
    (fw / "parameters.h").write_text(params)
    (fw / "myproject.cpp").write_text(program)
    inputs = {ly.name: _inputs(ly) for ly in LAYERS}
    for name, x in inputs.items():
        x.astype(np.float64).tofile(root / f"in_{name}.bin")
    std = "-std=c++23" if subprocess.run(["g++", "-std=c++23", "-fsyntax-only", "-xc++", "/dev/null"],
                                         capture_output=True).returncode == 0 else "-std=c++11"
    cmd = ["g++", DEFAULT_OPT_FLAG, std, "-w", f"-I{fw}", f"-I{fw / 'nnet_utils'}", f"-I{templates / 'ap_types'}",
           f"-DWEIGHTS_DIR=\"{fw / 'weights'}\"", str(fw / "myproject.cpp"), "-o", str(root / "run")]
    build = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    subprocess.run([str(root / "run")], cwd=root, check=True, capture_output=True, timeout=300)
    outputs = {ly.name: np.fromfile(root / f"out_{ly.name}.bin", dtype=np.float64).reshape(inputs[ly.name].shape)
               for ly in LAYERS}
    return Synthetic(Project(root), inputs, outputs)


@pytest.mark.slow
@needs_gpp
@pytest.mark.parametrize("layer", LAYERS, ids=lambda ly: ly.name)
def test_kernel_matches_the_headers(synthetic: Synthetic, layer: Layer) -> None:
    call = synthetic.calls[layer.name]
    assert call.function == layer.func and call.function in KERNELS
    x, want = synthetic.inputs[layer.name], synthetic.outputs[layer.name]
    got = KERNELS[call.function](call, [x])[0]
    bad = np.flatnonzero(got.reshape(want.shape) != want)
    detail = [(float(x.flat[i]), float(got.flat[i]), float(want.flat[i])) for i in bad[:5]]
    assert bad.size == 0, f"{bad.size} of {want.size} values differ (input, engine, C++): {detail}"


REFUSED = [
    (Layer("odd_exp_table", "softmax", "ap_fixed<12,4>", "ap_fixed<16,2>", _softmax(16, "latency", exp_size=1000), 16,
           inputs="slices", rows=4), "not a power of two"),
    (Layer("short_input", "softmax", "ap_fixed<8,3>", "ap_fixed<16,2>", _softmax(16, "latency"), 16,
           inputs="slices", rows=4), "top 12 bits"),
    (Layer("unknown_impl", "softmax", SM_IN, SM_IN, _softmax(16, "stable").replace("::stable", "::fancy"), 16,
           inputs="slices", rows=4), "'fancy'"),
    (Layer("wide_hard", "hard_sigmoid", "ap_fixed<18,5>", "ap_fixed<18,3>", _hard(256, "parallel"), 256, base="",
           statics="0.2|0.5|ap_ufixed<40,0>|ap_ufixed<17,1>", inputs="random", rows=1), "beyond float64"),
]


@pytest.mark.parametrize(("layer", "why"), REFUSED, ids=[ly.name for ly, _ in REFUSED])
def test_what_is_not_reproduced_is_refused(tmp_path: Path, layer: Layer, why: str) -> None:
    """Only the project's text is needed (no build): the kernel refuses, naming the layer and the reason."""
    fw = tmp_path / "firmware"
    (fw / "weights").mkdir(parents=True)
    for name, text in zip(("defines.h", "parameters.h", "myproject.cpp"), _project([layer], fw / "weights")):
        (fw / name).write_text(text)
    call = next(c for c in Project(tmp_path).calls if c.layer == layer.name)
    with pytest.raises(EngineUnsupported) as info:
        KERNELS[call.function](call, [_inputs(layer)])
    assert layer.name in str(info.value) and why in str(info.value)


# ------------------------------------------------------------------------------------------------ accelc.compile

ONNX_ATTRS = {"LeakyRelu": {"alpha": 0.1}, "ThresholdedRelu": {"alpha": 0.3}, "Elu": {"alpha": 1.0}, "Selu": {},
              "Softsign": {}, "Softplus": {}, "HardSigmoid": {"alpha": 0.2, "beta": 0.5}, "Clip": {},
              "LogSoftmax": {"axis": -1}, "Sigmoid": {}, "Tanh": {}, "Softmax": {"axis": -1}}


def _compile(tmp_path: Path, name: str, ops: list[str], io: str, conv: bool = False) -> Path:
    """One branch per activation, each a model output: x -> MatMul -> activations, or x -> one Conv per
    activation (hls4ml io_stream rewires several consumers of one Conv output onto the first one's output, so
    each activation gets a Conv of its own, and sees a wide range). Returns the written hls project's path."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))

    def const(key: str, value) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=np.float32), key)

    shape = [1, 3, 8, 8] if conv else [1, 16]
    nodes, outs, inits = [], [], [const("lo", -0.5), const("hi", 1.0)]
    if not conv:
        nodes.append(helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"))
        inits.append(const("w", rng.standard_normal((16, 16)) * 0.4))
    for i, op in enumerate(ops):
        src = "h"
        if conv:
            src = f"h{i}"
            nodes.append(helper.make_node("Conv", ["x", f"w{i}"], [src], name=f"conv{i}", kernel_shape=[3, 3],
                                          pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1))
            inits.append(const(f"w{i}", rng.standard_normal((4, 3, 3, 3)) * 0.6))
        ins = [src, "lo", "hi"] if op == "Clip" else [src]
        nodes.append(helper.make_node(op, ins, [f"y{i}"], name=f"{op.lower()}{i}", **ONNX_ATTRS[op]))
        outs.append(f"y{i}")
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(model), path)
    calib = rng.standard_normal((64, *shape[1:])).astype(np.float32)
    # self_check warn: this compares the engine with the C simulation, not either with ONNX Runtime
    art = accelc.compile(path, target="fpga", out=tmp_path / name, calibration=calib, options={"io_type": io},
                         self_check="warn")
    return art.path / "hls"


def _samples(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """N(0,1), x10 and x100 (saturating the tables' ends), tiny values and exact zeros."""
    rng = np.random.default_rng(seed)
    parts = [rng.standard_normal((24, *shape)), 10 * rng.standard_normal((12, *shape)),
             100 * rng.standard_normal((6, *shape)), 1e-3 * rng.standard_normal((6, *shape)), np.zeros((2, *shape))]
    return np.concatenate(parts).astype(np.float32)


def _assert_engine_is_emulator(hls_dir: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    want_out, want_trace = load_emulator(hls_dir).trace([x])
    got_out, got_trace = Engine(hls_dir).trace([x])
    for got, want in zip(got_out, want_out, strict=True):
        assert np.array_equal(got, want), f"output differs in {np.count_nonzero(got != want)} values"
    assert set(got_trace) == set(want_trace)
    for name, want in want_trace.items():
        got = got_trace[name]
        assert np.array_equal(got, want), f"{name}: {np.count_nonzero(got != want)} of {want.size} values differ"
    return want_trace


def _functions(hls_dir: Path) -> set[str]:
    return {c.function for c in Project(hls_dir).calls}


@pytest.mark.slow
@needs_gpp
def test_engine_runs_parallel_activations_as_the_c_simulation(tmp_path: Path) -> None:
    ops = ["Sigmoid", "Tanh", "Softmax", "Selu", "Softsign", "Softplus", "HardSigmoid", "Clip", "LogSoftmax"]
    hls_dir = _compile(tmp_path, "parallel_acts", ops, "parallel")
    assert {"sigmoid", "tanh", "softmax", "selu", "softsign", "softplus", "hard_sigmoid", "clip",
            "logsoftmax"} <= _functions(hls_dir)
    trace = _assert_engine_is_emulator(hls_dir, _samples((16,), 1))
    assert len({float(v) for v in trace["sigmoid0"].ravel()}) > 100  # the table is exercised, not one value


@pytest.mark.slow
@needs_gpp
def test_engine_runs_stream_activations_as_the_c_simulation(tmp_path: Path) -> None:
    ops = ["Tanh", "Sigmoid", "Softmax", "Selu", "Softsign", "Softplus", "HardSigmoid"]
    hls_dir = _compile(tmp_path, "stream_acts", ops, "stream", conv=True)
    project = Project(hls_dir)
    acts = [c for c in project.calls if c.function in ("tanh", "sigmoid", "softmax", "selu", "softsign", "softplus",
                                                       "hard_sigmoid")]
    assert len(acts) == len(ops) and all(project.is_stream(c.template[0]) for c in acts)
    _assert_engine_is_emulator(hls_dir, _samples((3, 8, 8), 2))


def _with_implementation(hls_dir: Path, impl: str, dest: Path) -> Path:
    """A copy of the project whose softmax config names another implementation (the emulator rebuilds it)."""
    shutil.copytree(hls_dir, dest, ignore=shutil.ignore_patterns("*.so"))
    params = dest / "firmware" / "parameters.h"
    text = params.read_text()
    assert "softmax_implementation::stable" in text
    params.write_text(text.replace("softmax_implementation::stable", f"softmax_implementation::{impl}"))
    return dest


@pytest.mark.slow
@needs_gpp
def test_every_softmax_implementation_runs_as_the_c_simulation(tmp_path: Path) -> None:
    """accelc writes softmax_implementation::stable; latency, legacy and argmax are the same project with the
    config rewritten (the emulator builds each from the written files)."""
    hls_dir = _compile(tmp_path, "softmax", ["Softmax"], "parallel")
    x = _samples((16,), 3)
    results = {}
    for impl in ("stable", "latency", "legacy", "argmax"):
        project = hls_dir if impl == "stable" else _with_implementation(hls_dir, impl, tmp_path / impl)
        results[impl] = _assert_engine_is_emulator(project, x)["softmax0"]
    assert set(np.unique(results["argmax"])) <= {0.0, 1.0}
    assert not np.array_equal(results["stable"], results["latency"])  # four different computations, each exact
    assert not np.array_equal(results["stable"], results["legacy"])


LITERAL_OPS = ["LeakyRelu", "ThresholdedRelu", "Elu"]


@pytest.fixture(scope="module")
def literal_project(tmp_path_factory) -> Path:
    return _compile(tmp_path_factory.mktemp("literal"), "literal_acts", LITERAL_OPS, "parallel")


@pytest.mark.slow
@needs_gpp
def test_parametrized_activations_match_the_c_simulation_layer_by_layer(literal_project: Path) -> None:
    """leaky_relu / thresholded_relu / elu take their parameter as a literal argument (`(x, 0.1, y)`); each
    kernel, fed the C simulation's own input to the layer, gives the C simulation's output."""
    x = _samples((16,), 4)
    _, trace = load_emulator(literal_project).trace([x])
    project = Project(literal_project)
    dense = next(c for c in project.calls if c.function == "dense")
    seen = set()
    for call in project.calls:
        if call.function in ("leaky_relu", "thresholded_relu", "elu"):
            assert call.inputs[0] == dense.outputs[0]
            got = KERNELS[call.function](call, [trace[dense.layer].reshape(len(x), -1).astype(np.float64)])[0]
            want = trace[call.layer].reshape(len(x), -1)
            assert np.array_equal(got.astype(np.float32), want), call.layer
            seen.add(call.function)
    assert seen == {"leaky_relu", "thresholded_relu", "elu"}


@pytest.mark.slow
@needs_gpp
def test_engine_runs_parametrized_activations(literal_project: Path) -> None:
    _assert_engine_is_emulator(literal_project, _samples((16,), 4))
