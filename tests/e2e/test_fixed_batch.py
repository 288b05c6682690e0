"""Models exported with a fixed batch, as people export them: `torch.onnx.export(model, torch.randn(1, 1, 28, 28),
path, dynamo=False)` without dynamic_axes (batch 1 baked in), or with a large dummy batch (256 here; the whole
dataset in the wild). Where no op mixes samples the batch comes out free: `predict` takes 1, 7 or 32 samples on
cpu and fpga and matches torch run sample by sample. Where the batch means something (`x.view(-1)` flattening it
into the features, `y - y.mean(0)`), it stays fixed: a multiple runs chunk by chunk, any other count is refused
naming the node. One fpga build per freed export form (g++, slow); the rest is cpu.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import accelc
from accelc.artifact import MANIFEST
from accelc.errors import AccelcError
from accelc.spec import BatchNote

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

SAMPLES = (1, 7, 32)
FPGA_RTOL = 0.05  # the self-check's fixed-point tolerance scale: rtol x max(1, max |ref|)


class CNN(nn.Module):
    """conv 1->4 3x3, ReLU, maxpool 2, then the flatten as written, linear -> 10."""

    def __init__(self, flatten: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.flatten = flatten
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 13 * 13, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        if self.flatten == "torch.flatten(x, 1)":
            x = torch.flatten(x, 1)
        elif self.flatten == "x.view(1, -1)":
            x = x.view(1, -1)
        else:
            assert self.flatten == "x.view(x.size(0), -1)"
            x = x.view(x.size(0), -1)
        return self.fc(x)


class BatchMixer(nn.Module):
    """The batch is semantic: 'view' flattens it into the features, 'mean' centres the logits over it."""

    def __init__(self, mode: str, batch: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.mode = mode
        self.conv = nn.Conv2d(1, 2, 3, stride=2)
        self.fc = nn.Linear(2 * 13 * 13 * (batch if mode == "view" else 1), 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        if self.mode == "view":
            return self.fc(x.view(-1))
        y = self.fc(torch.flatten(x, 1))
        return y - y.mean(0, keepdim=True)


def export(model: nn.Module, batch: int, path: Path) -> Path:
    model.eval()
    torch.onnx.export(model, torch.randn(batch, 1, 28, 28), str(path), dynamo=False)  # no dynamic_axes
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == batch
    return path


def by_chunks(model: nn.Module, x: np.ndarray, chunk: int) -> np.ndarray:
    """torch's output, `chunk` samples at a time (1: sample by sample, what a batch-1 export computes)."""
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i : i + chunk])).numpy() for i in range(0, len(x), chunk)])


def samples(n: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 1, 28, 28)).astype(np.float32)


def check_free(art: accelc.Artifact, model: nn.Module, batch: int, rtol: float) -> None:
    assert art.manifest["batch"] == {"exported": batch, "free": True}
    assert art.batch == BatchNote(batch, True)
    graph = onnx.load(str(art.path / "model.onnx")).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [n.op_type for n in graph.node] == ["Conv", "Relu", "MaxPool", "Flatten", "Gemm"]
    for n in SAMPLES:
        x = samples(n)
        want = by_chunks(model, x, 1)
        got = art.predict(x)
        assert got.shape == (n, 10)
        np.testing.assert_allclose(got, want, rtol=0, atol=rtol * max(1.0, float(np.abs(want).max())))
        assert (got.argmax(1) == want.argmax(1)).mean() >= 0.98


FORMS = [("torch.flatten(x, 1)", 1), ("x.view(1, -1)", 1), ("x.view(x.size(0), -1)", 1),
         ("x.view(x.size(0), -1)", 256)]


@pytest.mark.parametrize(("flatten", "batch"), FORMS, ids=[f"{f}-batch{b}" for f, b in FORMS])
def test_a_fixed_batch_export_runs_any_number_of_samples_on_cpu(flatten: str, batch: int, tmp_path: Path) -> None:
    model = CNN(flatten)
    art = accelc.compile(export(model, batch, tmp_path / "m.onnx"), target="cpu", out=tmp_path / "art")
    check_free(art, model, batch, 1e-4)
    free_batch = next(r for r in art.manifest["canonicalize"] if r["name"] == "free-batch")
    assert free_batch["stats"]["free"] is True and free_batch["modified"] is True
    np.testing.assert_allclose(accelc.load(art.path).predict(samples(7)), art.predict(samples(7)), rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize(("flatten", "batch"), [("x.view(1, -1)", 1), ("x.view(x.size(0), -1)", 256)],
                         ids=["view(1,-1)-batch1", "view(size0,-1)-batch256"])
def test_a_fixed_batch_export_runs_any_number_of_samples_on_fpga(flatten: str, batch: int, tmp_path: Path) -> None:
    model = CNN(flatten)
    art = accelc.compile(export(model, batch, tmp_path / "m.onnx"), target="fpga", out=tmp_path / "art")
    assert art.manifest["self_check"]["passed"] is True
    check_free(art, model, batch, FPGA_RTOL)


@pytest.mark.parametrize(("mode", "node"), [("mean", "/ReduceMean"), ("view", "/Reshape")])
def test_a_semantic_batch_stays_fixed_and_other_counts_are_refused_naming_the_node(mode: str, node: str,
                                                                                  tmp_path: Path) -> None:
    model = BatchMixer(mode, 4)
    art = accelc.compile(export(model, 4, tmp_path / "m.onnx"), target="cpu", out=tmp_path / "art")
    note = art.batch
    assert note.exported == 4 and note.free is False and f"node '{node}'" in note.reason
    assert art.manifest["batch"] == note.to_dict()
    x = samples(8)
    np.testing.assert_allclose(art.predict(x), by_chunks(model, x, 4), rtol=0, atol=1e-4)  # chunk by chunk
    for n in (1, 7):
        with pytest.raises(AccelcError) as info:
            art.predict(samples(n))
        msg = str(info.value)
        assert msg.startswith("the model was exported with a fixed batch of 4, which it needs: ")
        assert f"node '{node}'" in msg and f"got {n} samples (pass a multiple of 4)" in msg and "\n" not in msg


def test_an_artifact_from_before_the_batch_note_still_loads(tmp_path: Path) -> None:
    model = CNN("torch.flatten(x, 1)")
    art = accelc.compile(export(model, 1, tmp_path / "m.onnx"), target="cpu", out=tmp_path / "art")
    manifest = json.loads((art.path / MANIFEST).read_text())
    del manifest["batch"]
    (art.path / MANIFEST).write_text(json.dumps(manifest))
    old = accelc.load(art.path)
    assert old.batch is None
    np.testing.assert_allclose(old.predict(samples(7)), by_chunks(model, samples(7), 1), rtol=0, atol=1e-4)


def test_the_usual_input_shape_is_accepted_for_a_large_dummy_batch(tmp_path: Path) -> None:
    """`--input-shape 1,1,28,28` (the hint accelc prints) on a model exported at 256: the batch is the export's."""
    model = CNN("x.view(x.size(0), -1)")
    art = accelc.compile(export(model, 256, tmp_path / "m.onnx"), target="cpu", input_shape=(1, 1, 28, 28),
                         out=tmp_path / "art")
    assert art.batch == BatchNote(256, True)
    np.testing.assert_allclose(art.predict(samples(7)), by_chunks(model, samples(7), 7), rtol=0, atol=1e-4)
    with pytest.raises(AccelcError, match=r"has shape \(256, 1, 28, 28\), but \(1, 1, 28, 27\) was given"):
        accelc.compile(tmp_path / "m.onnx", target="cpu", input_shape=(1, 1, 28, 27), out=tmp_path / "bad")
