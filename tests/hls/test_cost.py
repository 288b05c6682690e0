"""FPGA cost estimates: the arithmetic on a hand-written hls4ml project, then a real compiled artifact."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

import accelc
from accelc.errors import AccelcError
from accelc.hls.cost import (
    LUT_MULT_MAX_BITS,
    _eval,
    dsps_per_multiplier,
    estimate,
    fixed_range,
    manifest_precision,
    parse_type,
)

# Four kernels: a pruned Dense with RF 2 (18-bit x 18-bit: 1 DSP each), a Dense of 8-bit operands (LUTs),
# a Conv whose 30-bit input needs 2 DSPs per product, and two scale layers (1-bit: none; 16-bit: DSPs).
DEFINES_H = """
typedef ap_fixed<18,4,AP_RND,AP_SAT,0> input_t;
typedef ap_fixed<18,1,AP_RND,AP_SAT,0> dense_a_weight_t;
typedef ap_fixed<26,8> dense_a_accum_t;
typedef ap_fixed<18,3,AP_RND,AP_SAT,0> layer2_t;
typedef ap_fixed<8,3> layer3_t;
typedef ap_fixed<8,1> dense_b_weight_t;
typedef ap_fixed<30,10> layer4_t;
typedef ap_fixed<18,2> conv_weight_t;
typedef ap_fixed<18,4> layer5_t;
typedef ap_uint<1> scale6_t;
typedef ap_fixed<18,4> layer6_t;
typedef ap_fixed<16,2> scale7_t;
typedef ap_fixed<18,4> result_t;
"""

PARAMETERS_H = """
// Dense_a
struct config2 : nnet::dense_config {
    static const unsigned n_in = 16;
    static const unsigned n_out = 8;
    static const unsigned strategy = nnet::latency;
    static const unsigned reuse_factor = 2;
    static const unsigned n_zeros = 100;
    static const unsigned multiplier_limit = DIV_ROUNDUP(n_in * n_out, reuse_factor) - n_zeros / reuse_factor;
    typedef dense_a_accum_t accum_t;
    typedef dense_a_weight_t weight_t;
};

// Dense_b
struct config3 : nnet::dense_config {
    static const unsigned n_in = 8;
    static const unsigned n_out = 4;
    static const unsigned strategy = nnet::latency;
    static const unsigned reuse_factor = 1;
    static const unsigned n_zeros = 0;
    typedef dense_b_weight_t weight_t;
};

// Conv2D_c
struct config5_mult : nnet::dense_config {
    static const unsigned n_in = 9;
    static const unsigned n_out = 2;
    static const unsigned reuse_factor = 3;
    static const unsigned strategy = nnet::resource;
    static const unsigned n_zeros = 6;
    typedef conv_weight_t weight_t;
};

struct config5 : nnet::conv2d_config {
    static const unsigned in_height = 6;
    static const unsigned in_width = 6;
    static const unsigned filt_height = 3;
    static const unsigned filt_width = 3;
    static const unsigned kernel_size = filt_height * filt_width;
    static const unsigned out_height = 4;
    static const unsigned out_width = 4;
    static const unsigned reuse_factor = 3;
    static const unsigned n_partitions = 8;
    static const unsigned n_pixels = out_height * out_width / n_partitions;
    typedef config5_mult mult_config;
};

// bn_bias
struct config6 : nnet::batchnorm_config {
    static const unsigned n_in = 32;
    static const unsigned n_filt = -1;
    static const unsigned n_scale_bias = (n_filt == -1) ? n_in : n_filt;
    static const unsigned reuse_factor = 1;
    static const unsigned multiplier_limit = DIV_ROUNDUP(n_in, reuse_factor);
    typedef scale6_t scale_t;
};

// bn_scale
struct config7 : nnet::batchnorm_config {
    static const unsigned n_in = 32;
    static const unsigned n_filt = -1;
    static const unsigned n_scale_bias = (n_filt == -1) ? n_in : n_filt;
    static const unsigned reuse_factor = 1;
    static const unsigned multiplier_limit = DIV_ROUNDUP(n_in, reuse_factor);
    typedef scale7_t scale_t;
};

// relu
struct relu_config8 : nnet::activ_config {
    static const unsigned n_in = 32;
};
"""

MYPROJECT_CPP = """
    nnet::dense<input_t, layer2_t, config2>(input_0, layer2_out, w2, b2); // Dense_a
    nnet::dense<layer2_t, layer3_t, config3>(layer2_out, layer3_out, w3, b3); // Dense_b
    nnet::conv_2d_cl<layer4_t, layer5_t, config5>(layer4_out, layer5_out, w5, b5); // Conv2D_c
#ifndef __SYNTHESIS__
    nnet::save_layer_output<layer5_t>(layer5_out, "Conv2D_c", 4*4*2);
#endif
    nnet::normalize<layer5_t, layer6_t, config6>(layer5_out, layer6_out, s6, b6); // bn_bias
    nnet::normalize<layer6_t, result_t, config7>(layer6_out, layer7_out, s7, b7); // bn_scale
    nnet::relu<result_t, result_t, relu_config8>(layer7_out, layer8_out); // relu
"""


def _project(tmp_path: Path, io_type: str = "io_parallel", reuse_factor: int = 1) -> tuple[Path, dict]:
    fw = tmp_path / "hls" / "firmware"
    fw.mkdir(parents=True)
    (fw / "defines.h").write_text(DEFINES_H)
    (fw / "parameters.h").write_text(PARAMETERS_H)
    (fw / "myproject.cpp").write_text(MYPROJECT_CPP)
    manifest = {"target": {"name": "fpga", "io_type": io_type, "clock_period": 5.0, "reuse_factor": reuse_factor,
                           "precision": {"a": {"result": "fixed<18,3,RND,SAT>", "weight": "fixed<18,1,RND,SAT>"}}}}
    return tmp_path, manifest


@pytest.fixture
def no_hls_tools(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_types_ranges_and_dsp_rule():
    assert parse_type("fixed<18,5,RND,SAT>") == {"width": 18, "integer": 5, "signed": True}
    assert parse_type("ap_ufixed<8,0>") == {"width": 8, "integer": 0, "signed": False}
    assert parse_type("ap_uint<1>") == {"width": 1, "integer": 1, "signed": False}
    assert parse_type("auto") is None
    assert fixed_range("fixed<18,1,RND,SAT>") == (-1.0, 1.0 - 2.0**-17)
    assert fixed_range("fixed<8,3>") == (-4.0, 4.0 - 2.0**-5)
    assert fixed_range("ufixed<8,3>") == (0.0, 8.0 - 2.0**-5)
    assert dsps_per_multiplier(18, 18) == 1
    assert dsps_per_multiplier(27, 18) == 1
    assert dsps_per_multiplier(30, 18) == 2  # the wider operand spills over the 27-bit port
    assert dsps_per_multiplier(30, 20) == 4
    assert dsps_per_multiplier(18, LUT_MULT_MAX_BITS) == 0  # a narrow operand: LUTs
    assert _eval("DIV_ROUNDUP(n_in * n_out, reuse_factor) - n_zeros / reuse_factor",
                 {"n_in": 16, "n_out": 8, "reuse_factor": 3, "n_zeros": 100}) == 43 - 33
    assert _eval("(n_filt == -1) ? n_in : n_filt", {"n_filt": -1, "n_in": 7}) == 7
    assert _eval("unknown * 2", {}) is None
    precision = {"conv1_Conv": {"result": "r"}, "fc1_Gemm": {"result": "a"}, "fc1_Gemm_bias": {"result": "b"}}
    assert manifest_precision("Conv2D_conv1_Conv", precision) == {"result": "r"}
    assert manifest_precision("bn_fc1_Gemm_bias", precision) == {"result": "b"}  # the longest matching name
    assert manifest_precision("Dense_fc1_Gemm", precision) == {"result": "a"}
    assert manifest_precision("other", precision) is None


def test_estimate_arithmetic_io_parallel(tmp_path, no_hls_tools):
    est = estimate(*_project(tmp_path, reuse_factor=2))
    json.dumps(est)  # JSON-serialisable as it stands
    layers = {r["name"]: r for r in est["layers"]}
    assert list(layers) == ["Dense_a", "Dense_b", "Conv2D_c", "bn_bias", "bn_scale", "relu"]

    a = layers["Dense_a"]  # latency, RF 2: ceil(128/2) - 100//2 multipliers, 18x18 -> 1 DSP each
    assert (a["macs"], a["mults"], a["multipliers"], a["multiplier_kind"], a["dsps"]) == (128, 28, 14, "DSP", 14)
    assert (a["in_bits"], a["weight_bits"], a["weight_storage_bits"]) == (18, 18, 128 * 18)
    assert a["cycles"] == 2 + 4  # RF + log2(16) adder stages
    assert a["precision"]["weight"] == "fixed<18,1,RND,SAT>"  # the manifest's entry for node "a"
    assert layers["Dense_b"]["precision"] is None

    b = layers["Dense_b"]  # 8-bit activation x 8-bit weight: LUT multipliers
    assert (b["multipliers"], b["multiplier_kind"], b["dsps"], b["lut_multipliers"]) == (32, "LUT", 0, 32)
    assert b["cycles"] == 1 + 3

    c = layers["Conv2D_c"]  # resource keeps zeros; 30-bit input x 18-bit weight -> 2 DSPs per multiplier
    assert (c["kind"], c["pixels"], c["macs"], c["mults"]) == ("conv", 16, 16 * 18, 16 * 12)
    assert (c["multipliers"], c["dsp_per_multiplier"], c["dsps"]) == (6, 2, 12)
    assert c["cycles"] == 8 * 3 + 4  # n_partitions x RF + log2(9) adder stages
    assert c["outputs"] == 32 and c["activation_bits"] == 32 * 18

    assert (layers["bn_bias"]["multipliers"], layers["bn_bias"]["dsps"]) == (0, 0)  # a 1-bit scale multiplies by 0/1
    s = layers["bn_scale"]
    assert (s["kind"], s["mults"], s["multipliers"], s["dsps"]) == ("scale", 32, 32, 32)
    assert layers["relu"]["cycles"] == 1

    t = est["totals"]
    assert t["macs"] == 128 + 32 + 288 + 32 and t["multipliers"] == 14 + 32 + 6 + 32
    assert t["dsps"] == 14 + 12 + 32 and t["lut_multipliers"] == 32
    assert t["latency_cycles"] == 6 + 4 + 28 + 1 + 1 + 1 and t["latency_ns"] == t["latency_cycles"] * 5.0
    assert t["interval_cycles"] == 3  # the largest reuse factor
    # the manifest asked for RF 2 everywhere; the generated code says otherwise and wins
    assert any("reuse factor 2" in w for w in est["warnings"])
    assert est["source"] == "model" and "not synthesis results" in est["note"] and est["model"]


def test_estimate_io_stream_cycles(tmp_path, no_hls_tools):
    est = estimate(*_project(tmp_path, io_type="io_stream"))
    layers = {r["name"]: r for r in est["layers"]}
    assert layers["Conv2D_c"]["cycles"] == 36 * 3 + 4  # one input pixel per II = RF, plus the adder tree
    assert layers["Dense_a"]["cycles"] == 16 + 2 + 4  # 16 one-value words in, RF, adder tree
    assert est["totals"]["interval_cycles"] == max(r["cycles"] for r in est["layers"])
    assert "upper bound" in est["totals"]["latency_kind"]


def test_vendor_tool_on_path_is_named(tmp_path, monkeypatch):
    project, manifest = _project(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "vitis_hls"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    est = estimate(project, manifest)
    assert est["tools"]["vitis_hls"] == str(tool)
    assert "vitis_hls is on PATH" in est["note"] and "--synth" in est["note"]


def test_refuses_what_it_cannot_estimate(tmp_path):
    with pytest.raises(AccelcError, match="fpga artifact"):
        estimate(tmp_path, {"target": {"name": "cpu"}})
    with pytest.raises(AccelcError, match="parameters.h is missing"):
        estimate(tmp_path, {"target": {"name": "fpga"}})


@pytest.mark.slow
def test_estimate_of_a_compiled_pruned_mlp(tmp_path):
    """One real compile: the estimate agrees with the model's own MACs and hls4ml's multiplier counts."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 24), nn.ReLU(), nn.Linear(24, 5)).eval()
    art = accelc.compile(net, target="fpga", input_shape=(1, 16), passes=["prune:sparsity=0.5"],
                         options={"strategy": "latency"}, out=tmp_path / "art")
    est = estimate(art.path, art.manifest)
    json.dumps(est)
    t = est["totals"]
    mults = art.manifest["target"]["multipliers"]
    assert t["macs"] == 16 * 24 + 24 * 5
    assert t["zeros"] == mults["zeros"] and t["multipliers"] == mults["total"]
    assert t["mults"] == t["macs"] - mults["zeros"]  # io_parallel Latency at RF 1: one multiplier per nonzero
    dense = [r for r in est["layers"] if r["kind"] == "dense"]
    assert [(r["n_in"], r["n_out"]) for r in dense] == [(16, 24), (24, 5)]
    # accelc's default 18-bit types: every product takes one DSP
    assert all(r["multiplier_kind"] == "DSP" and r["dsp_per_multiplier"] == 1 for r in dense)
    assert t["dsps"] == mults["total"] and t["lut_multipliers"] == 0
    # every layer the emulator traces is costed, with the manifest's precision attached
    traced = {layer["name"] for layer in art.runner.trace_layers}
    assert traced <= {r["name"] for r in est["layers"]}
    for r in dense:
        assert r["precision"]["weight"].startswith("fixed<18,") and r["weight_type"].startswith("fixed<18,")
    assert est["io_type"] == "io_parallel" and t["latency_cycles"] >= len(est["layers"])
    assert t["latency_ns"] == t["latency_cycles"] * art.manifest["target"]["clock_period"]
