"""End to end, cpu target: nn.Module and .onnx sources through accelc.compile, the artifact, its cache and
accelc.verify, with the real ONNX Runtime. Every compile here takes about a second."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from torch import nn

import accelc

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

IN_SHAPE = (1, 1, 8, 8)


class BnDropNet(nn.Module):
    """conv -> BatchNorm2d -> ReLU -> Dropout -> flatten -> linear -> BatchNorm1d -> ReLU -> linear (5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 6 * 6, 8)
        self.bn1 = nn.BatchNorm1d(8)  # after a Linear: torch's exporter leaves it, accelc must fold it
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.bn(self.conv(x)))).flatten(1)
        return self.head(torch.relu(self.bn1(self.fc(x))))


def make_net(seed: int) -> BnDropNet:
    """A seeded net whose BatchNorms hold non-trivial statistics (so folding them matters), in eval mode."""
    torch.manual_seed(seed)
    net = BnDropNet()
    for bn in (net.bn, net.bn1):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


def torch_out(net: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def inputs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *IN_SHAPE[1:])).astype(np.float32)


def export_onnx(net: nn.Module, path: Path, dropout: bool = True) -> Path:
    """Export keeping BatchNormalization nodes (no constant folding), plus one explicit Dropout node."""
    torch.onnx.export(net, torch.zeros(IN_SHAPE), str(path), dynamo=False, opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    model = onnx.load(str(path))
    assert [n.op_type for n in model.graph.node].count("BatchNormalization") == 2, "exporter folded BN itself"
    if dropout:
        nodes = list(model.graph.node)
        relu = next(i for i, n in enumerate(nodes) if n.op_type == "Relu")
        src = nodes[relu].output[0]
        dst = f"{src}_dropout"
        for n in nodes:
            for k, name in enumerate(n.input):
                if name == src:
                    n.input[k] = dst
        nodes.insert(relu + 1, helper.make_node("Dropout", [src], [dst], name="injected_dropout"))
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def record(manifest: dict, name: str) -> dict:
    recs = [r for r in manifest["canonicalize"] if r["name"] == name]
    assert recs, f"no canonicalize record named {name!r}: {[r['name'] for r in manifest['canonicalize']]}"
    return recs[0]


def ops_of(artifact_dir: Path) -> list[str]:
    return [n.op_type for n in onnx.load(str(artifact_dir / "model.onnx")).graph.node]


@pytest.fixture(scope="module")
def module_art(tmp_path_factory) -> tuple[BnDropNet, accelc.Artifact]:
    net = make_net(seed=0)
    out = tmp_path_factory.mktemp("cpu-module") / "bndrop-cpu"
    return net, accelc.compile(net, target="cpu", input_shape=IN_SHAPE, out=out)


@pytest.fixture
def frontend_loads(monkeypatch) -> list:
    """Counts model imports: a compile that imports the model again rebuilds, one that does not is a hit."""
    import accelc.frontend as frontend

    calls: list = []
    real = frontend.load

    def counting(source, *args, **kwargs):
        calls.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(frontend, "load", counting)
    return calls


# --- an nn.Module compiled for cpu --------------------------------------------------------------------------


def test_module_predict_matches_torch_on_a_batch(module_art) -> None:
    net, art = module_art
    x = inputs(5)
    y = art.predict(x)
    assert y.shape == (5, 5)
    np.testing.assert_allclose(y, torch_out(net, x), atol=1e-4, rtol=0)


def test_module_predict_takes_one_sample_without_batch_dim(module_art) -> None:
    net, art = module_art
    x = inputs(1, seed=3)[0]  # (1, 8, 8): C, H, W
    y = np.asarray(art.predict(x))
    assert y.size == 5
    np.testing.assert_allclose(y.reshape(1, 5), torch_out(net, x[None]), atol=1e-4, rtol=0)


def test_module_artifact_reloads_with_identical_predictions(module_art) -> None:
    _, art = module_art
    x = inputs(5, seed=1)
    again = accelc.load(art.path)
    assert again.target == "cpu"
    np.testing.assert_array_equal(again.predict(x), art.predict(x))


def test_module_manifest_describes_source_interface_and_checks(module_art) -> None:
    _, art = module_art
    m = json.loads((art.path / "manifest.json").read_text())
    assert m == art.manifest
    assert re.fullmatch(r"[0-9a-f]{64}", m["source"]["sha256"])
    assert m["source"]["kind"] == "nn.Module"
    assert m["target"]["name"] == "cpu"
    assert [(i["name"], i["shape"], i["layout"]) for i in m["inputs"]] == [("input", list(IN_SHAPE), "NCHW")]
    assert [(o["name"], o["shape"]) for o in m["outputs"]] == [("output", [1, 5])]
    assert m["self_check"]["passed"] is True
    assert m["self_check"]["max_abs_err"] <= 1e-4
    # torch's exporter fuses Conv+BN itself; the BatchNorm1d after the Linear is left for accelc to fold.
    fold = record(m, "fold-batchnorm")
    assert fold["stats"]["folded"] >= 1 and fold["stats"]["kept"] == 0
    assert fold["modified"] is True
    ops = ops_of(art.path)
    assert "BatchNormalization" not in ops and "Dropout" not in ops, ops


def test_module_verify_figures(module_art) -> None:
    _, art = module_art
    report = accelc.verify(art, inputs(16, seed=2))
    assert report.samples == 16
    assert report.max_abs_err <= 1e-5
    assert report.rmse <= 1e-5
    assert report.cosine == pytest.approx(1.0, abs=1e-6)
    assert report.top1_agreement == 1.0
    assert report.per_layer == []  # per-layer tables are an fpga matter
    assert report.passed


def test_verify_thresholds_gate(module_art) -> None:
    _, art = module_art
    x = inputs(4, seed=5)
    assert accelc.verify(art, x, atol=1e-3, min_agreement=1.0).passed
    failed = accelc.verify(art, x, atol=-1.0)
    assert not failed.passed
    assert any("atol" in v for v in failed.violations), failed.violations


def test_module_in_training_mode_is_compiled_for_inference_and_left_as_it_was(tmp_path) -> None:
    net = make_net(seed=7).train()
    art = accelc.compile(net, target="cpu", input_shape=IN_SHAPE, out=tmp_path / "train-mode")
    assert net.training, "compile must restore the module's training flag"
    x = inputs(5, seed=4)
    np.testing.assert_allclose(art.predict(x), torch_out(net.eval(), x), atol=1e-4, rtol=0)


def test_compile_leaves_no_temporary_siblings(module_art) -> None:
    _, art = module_art
    leftovers = [p.name for p in art.path.parent.iterdir() if p.name.startswith(f".{art.path.name}.")]
    assert leftovers == []


# --- an .onnx file: canonicalization records and the build cache --------------------------------------------


def test_onnx_file_canonicalization_folds_batchnorm_and_drops_dropout(tmp_path) -> None:
    net = make_net(seed=11)
    path = export_onnx(net, tmp_path / "bndrop.onnx")
    art = accelc.compile(path, target="cpu", out=tmp_path / "bndrop-cpu")
    m = art.manifest
    assert m["source"]["kind"] == "onnx"
    assert m["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record(m, "fold-batchnorm")["stats"] == {"folded": 2, "kept": 0}
    assert record(m, "remove-noops")["stats"]["removed"]["Dropout"] == 1  # a plain Dropout(x) is inference
    ops = ops_of(art.path)
    assert "BatchNormalization" not in ops and "Dropout" not in ops, ops
    x = inputs(5, seed=6)
    np.testing.assert_allclose(art.predict(x), torch_out(net, x), atol=1e-4, rtol=0)


def test_cache_hit_rebuild_on_new_options_and_force(tmp_path, frontend_loads) -> None:
    path = export_onnx(make_net(seed=1234), tmp_path / "cached.onnx")  # bytes no other test compiles
    out = tmp_path / "cached-cpu"
    first = accelc.compile(path, target="cpu", out=out)
    x = inputs(3, seed=8)
    y = first.predict(x)
    manifest_inode = (out / "manifest.json").stat().st_ino
    frontend_loads.clear()

    # A hit shows in what is not done (no model import, no rewrite), not in wall-clock time on a busy machine.
    second = accelc.compile(path, target="cpu", out=out)
    assert frontend_loads == [], "an identical compile must not import the model again"
    assert second.manifest["cache_key"] == first.manifest["cache_key"]
    assert (out / "manifest.json").stat().st_ino == manifest_inode, "the artifact was rewritten"
    np.testing.assert_array_equal(second.predict(x), y)

    # Same source and options into another directory: served from the artifact cache.
    elsewhere = accelc.compile(path, target="cpu", out=tmp_path / "elsewhere")
    assert frontend_loads == []
    assert elsewhere.manifest["cache_key"] == first.manifest["cache_key"]
    np.testing.assert_array_equal(elsewhere.predict(x), y)

    # Different options: a new key and a real build.
    other = accelc.compile(path, target="cpu", out=out, options={"threads": 1})
    assert frontend_loads == [path]
    assert other.manifest["cache_key"] != first.manifest["cache_key"]
    assert other.manifest["target"]["options"] == {"threads": 1}
    np.testing.assert_allclose(other.predict(x), y, atol=1e-6, rtol=0)

    # force=True rebuilds although nothing changed.
    frontend_loads.clear()
    inode = (out / "manifest.json").stat().st_ino
    forced = accelc.compile(path, target="cpu", out=out, options={"threads": 1}, force=True)
    assert frontend_loads == [path]
    assert forced.manifest["cache_key"] == other.manifest["cache_key"]
    assert (out / "manifest.json").stat().st_ino != inode, "force=True must rewrite the artifact"


def test_changed_file_at_the_same_path_is_recompiled(tmp_path, frontend_loads) -> None:
    path = tmp_path / "model.onnx"
    out = tmp_path / "model-cpu"
    export_onnx(make_net(seed=21), path)
    first = accelc.compile(path, target="cpu", out=out)
    new_net = make_net(seed=22)
    export_onnx(new_net, path)  # same path, same options, other weights
    frontend_loads.clear()
    second = accelc.compile(path, target="cpu", out=out)
    assert frontend_loads == [path]
    assert second.manifest["cache_key"] != first.manifest["cache_key"]
    x = inputs(4, seed=9)
    np.testing.assert_allclose(second.predict(x), torch_out(new_net, x), atol=1e-4, rtol=0)


def test_an_fpga_only_refusal_does_not_concern_cpu(tmp_path) -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2), nn.Flatten()).eval()  # refused by fpga, fine on cpu
    art = accelc.compile(net, target="cpu", input_shape=IN_SHAPE, out=tmp_path / "dilated-cpu")
    x = inputs(3, seed=10)
    np.testing.assert_allclose(art.predict(x), torch_out(net, x), atol=1e-4, rtol=0)


# --- regressions: bugs these tests found (fixed in da4381e, fcf11e5) ----------------------------------------


def test_onnx_with_static_batch_of_one_compiles_and_runs_batches(tmp_path) -> None:
    torch.manual_seed(5)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 4)).eval()
    path = tmp_path / "static_batch.onnx"
    torch.onnx.export(net, torch.zeros(IN_SHAPE), str(path), dynamo=False, opset_version=13)  # batch is 1
    art = accelc.compile(path, target="cpu", out=tmp_path / "static-cpu")
    assert art.manifest["self_check"]["passed"] is True
    x = inputs(3, seed=12)
    np.testing.assert_allclose(art.predict(x), torch_out(net, x), atol=1e-4, rtol=0)
    assert accelc.verify(art, x).max_abs_err <= 1e-5


def test_accelc_verify_is_the_function_after_a_compile(module_art) -> None:
    _, art = module_art  # a compile has run in this process: the submodule is imported by now
    assert callable(accelc.verify), accelc.verify
    assert accelc.verify(art, inputs(2)).passed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.skipif(_umask() & 0o077 == 0o077, reason="with umask 077 a private directory is expected anyway")
def test_artifact_directory_permissions_follow_umask(module_art) -> None:
    _, art = module_art
    assert stat.S_IMODE(art.path.stat().st_mode) == 0o777 & ~_umask()
