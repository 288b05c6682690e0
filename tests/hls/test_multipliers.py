"""Multipliers read back from hls4ml's generated parameters.h: zeros count only under the Latency strategy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import accelc
from accelc.hls.multipliers import multipliers

PARAMETERS_H = """
// Dense_fc1_Gemm
struct config3 : nnet::dense_config {
    static const unsigned n_in = 16;
    static const unsigned n_out = 8;
    static const unsigned strategy = nnet::latency;
    static const unsigned reuse_factor = 2;
    static const unsigned n_zeros = 100;
    static const unsigned n_nonzeros = 28;
};

// Conv2D_conv_Conv
struct config4_mult : nnet::dense_config {
    static const unsigned n_in = 9;
    static const unsigned n_out = 4;
    static const unsigned reuse_factor = 1;
    static const unsigned strategy = nnet::resource;
    static const unsigned n_zeros = 30;
};

struct config4 : nnet::conv2d_config {
    static const unsigned n_chan = 1;
};
"""


def test_counts_follow_hls4mls_multiplier_limit(tmp_path: Path):
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "parameters.h").write_text(PARAMETERS_H)
    got = multipliers(tmp_path)
    # latency: ceil(16*8/2) - 100//2 = 64 - 50; resource keeps a multiplier per weight slot, zeros or not
    assert got["layers"]["Dense_fc1_Gemm"]["multipliers"] == 14
    assert got["layers"]["Conv2D_conv_Conv"]["multipliers"] == 36
    assert got["total"] == 50 and got["weights"] == 164 and got["zeros"] == 130


@pytest.mark.slow
def test_pruned_latency_mlp_has_fewer_multipliers_and_emulates_the_pruned_graph(tmp_path: Path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    x = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    art = accelc.compile(net, target="fpga", input_shape=(1, 16), passes=["prune:sparsity=0.8"],
                         options={"strategy": "latency"}, out=tmp_path / "art")
    mults = art.manifest["target"]["multipliers"]
    assert mults["weights"] == 16 * 32 + 32 * 10
    assert abs(mults["zeros"] / mults["weights"] - 0.8) <= 0.01
    assert mults["total"] == mults["weights"] - mults["zeros"]
    # the artifact computes the pruned graph (not the dense one) within fixed-point error
    import onnx

    from accelc.reference import Reference

    pruned = Reference(onnx.load(str(art.path / "model.onnx"))).run([x])[0]
    dense = Reference(onnx.load(str(art.reference_path))).run([x])[0]
    out = art.predict(x)
    assert np.max(np.abs(out - pruned)) < 0.05 * max(1.0, np.max(np.abs(pruned)))
    assert np.max(np.abs(pruned - dense)) > 0.05  # ... and the pruning really changed the function
