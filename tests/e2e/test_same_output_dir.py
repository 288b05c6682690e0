"""Two compiles into one output directory at once each get their own artifact: `compile` returns the artifact it
built, never one another process swapped in (it used to end with `return load(out)`); and the default output
directory differs for different sources with the same file name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from accelc.driver import _default_out

SCRIPT = """
import json, sys, numpy as np, accelc
art = accelc.compile(sys.argv[1], target="cpu", out=sys.argv[2], force=True)
y = art.predict(np.ones((2, int(sys.argv[3])), np.float32))
print(json.dumps({"sha": art.manifest["source"]["sha256"], "shape": list(y.shape)}))
"""


def _dense(path: Path, n_in: int, n_out: int) -> Path:
    w = np.random.default_rng(n_in).standard_normal((n_in, n_out)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])],
                              [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_two_compiles_into_one_directory_each_get_their_own_model(tmp_path: Path) -> None:
    models = [(_dense(tmp_path / f"m{k}.onnx", n_in, n_out), n_in, n_out)
              for k, (n_in, n_out) in enumerate([(12, 3), (3, 7)])]
    out = tmp_path / "shared-out"
    for _ in range(3):
        procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(m), str(out), str(n_in)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for m, n_in, _ in models]
        results = [p.communicate(timeout=300) for p in procs]
        for (path, _, n_out), proc, (stdout, stderr) in zip(models, procs, results):
            assert proc.returncode == 0, stderr
            got = json.loads(stdout.strip().splitlines()[-1])
            assert got["shape"] == [2, n_out]  # its own model, not the other one
            assert got["sha"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def test_default_output_directories_differ_for_same_named_sources(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "model.onnx", tmp_path / "b" / "model.onnx"
    assert _default_out(a, "cpu") != _default_out(b, "cpu")
    assert _default_out(a, "cpu") == _default_out(a, "cpu")
    assert _default_out(a, "cpu").name.startswith("model-cpu-")
