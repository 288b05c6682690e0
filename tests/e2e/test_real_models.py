"""Acceptance suite of issue 14: real models, exported by the real tools, compile for cpu and fpga and match the
framework's own output.

The zoo (examples/real_models/zoo.py) holds each model as people write it — the seed's LeNet with
``x.view(-1, 4*4*50)``, a depthwise-separable net, a MobileNetV2 block with ReLU6 and ``x.mean((2, 3))``,
MLPerf Tiny's ResNet-8, DS-CNN and FC autoencoder (small), a Conv1d net with ``x.mean(2)``, a model exported with
a fixed batch of 1, Keras Sequential and functional models — each exported by TorchScript (.pt), the TorchScript
ONNX exporter (.onnx, dynamo=False), the dynamo ONNX exporter (torch's default), torch.export (.pt2) or Keras 3
(.keras); a fixed-batch export must come out batch-free (the manifest says so). Every (model, target) is one
test; each model file is written once per module (per pytest-xdist worker) and compiled once per target. Judged
against the framework on >= 64 samples per input distribution: classifiers agree on the top-1 class for >= 98 %
and stay within the self-check's tolerance scale (rtol x max(1, max |ref|): 0.05 fpga, 1e-4 cpu); the autoencoder
(regression) within 0.05 x max |ref| on fpga, 1e-4 x max |ref| on cpu. Cases marked `cli` compile through
`accelc compile FILE` instead of the API. fpga cases build a C simulation (g++) and are marked slow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _cli import accelc_command

import accelc

ROOT = Path(__file__).resolve().parents[2]
# `examples` is not part of the installed package; it is imported from the checkout.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.real_models.zoo import CASES, Built, Case, score  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::FutureWarning")

TARGETS = ("cpu", "fpga")
PARAMS = [pytest.param(case, target, id=f"{case.id}-{target}", marks=[pytest.mark.slow] if target == "fpga" else [])
          for case in CASES for target in TARGETS]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`built(case)`: the case's exported file, test inputs and framework outputs, made once per module."""
    root = tmp_path_factory.mktemp("zoo")
    made: dict[str, Built] = {}

    def get(case: Case) -> Built:
        if case.id not in made:
            made[case.id] = case.build(root / case.id)
        return made[case.id]

    return get


def compile_case(case: Case, b: Built, target: str, out: Path) -> accelc.Artifact:
    if not case.cli:
        return accelc.compile(str(b.path), target=target, input_shape=b.input_shape, out=out)
    args = ["compile", str(b.path), "--target", target, "-o", str(out)]
    if b.input_shape:
        args += ["--input-shape", ",".join(map(str, b.input_shape))]
    # The subprocess inherits this session's ACCELC_CACHE_DIR (tests/conftest.py).
    res = subprocess.run([*accelc_command(), *args], cwd=ROOT, env={**os.environ, "COLUMNS": "200"},
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"accelc {' '.join(args)}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert "Traceback" not in res.stderr, res.stderr
    return accelc.load(out)


@pytest.mark.parametrize(("case", "target"), PARAMS)
def test_real_model_compiles_and_matches_its_framework(case: Case, target: str, built, tmp_path) -> None:
    b = built(case)
    art = compile_case(case, b, target, tmp_path / f"{case.id}-{target}")
    assert art.target == target
    assert art.manifest["self_check"]["passed"] is True
    if case.fixed_batch:  # the batch of 1 baked in at export was freed (a kept one would run chunk by chunk)
        assert art.manifest.get("batch") == {"exported": 1, "free": True}, art.manifest.get("batch")
    bad = []
    for name, x in b.data.items():
        got = art.predict(x)  # every sample in one call: a batch-1 export must run any batch
        assert got.shape == b.expected[name].shape, (name, got.shape, b.expected[name].shape)
        s = score(case, target, got, b.expected[name])
        if not s["ok"]:
            bad.append(f"{name} ({len(x)} samples): max abs err {s['max_err']:.3g} (tol {s['tol']:.3g}), "
                       f"top-1 agreement {s['agreement']}")
    assert not bad, f"{case.id} on {target}: " + "; ".join(bad)
    if target == "fpga":  # the numpy engine ran it, and equals the C simulation bit for bit on every input set
        engine = art.manifest["target"]["engine"]
        assert engine["numpy"] == "ok" and engine["cross_check"]["bit_exact"], engine
        assert art.runner.description.startswith("numpy engine"), art.runner.description
        csim = accelc.load(art.path, engine="csim")
        for name, x in b.data.items():
            assert np.array_equal(art.predict(x), csim.predict(x)), f"{case.id} {name}: engine != C simulation"
