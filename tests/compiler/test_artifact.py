"""accelc.artifact: atomic writes, load() errors, input checking and the runner hookup."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from accelc.artifact import (
    FORMAT_VERSION,
    MANIFEST,
    MODEL,
    REFERENCE,
    Artifact,
    load,
    write_atomically,
    write_manifest,
)
from accelc.errors import AccelcError, ArtifactError
from accelc.spec import TensorSpec


def _manifest(inputs: list[TensorSpec] | None = None, target: str = "cpu") -> dict:
    inputs = inputs or [TensorSpec("x", (1, 1, 4, 4))]
    return {
        "format": FORMAT_VERSION,
        "target": {"name": target, "options": {}},
        "inputs": [s.to_dict() for s in inputs],
        "outputs": [TensorSpec("y", (1, 3), layout="NC").to_dict()],
    }


def _write_artifact(path: Path, manifest: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    write_manifest(path, manifest or _manifest())
    (path / MODEL).write_bytes(b"not read by load()")
    return path


def _siblings(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


# ---------------------------------------------------------------- write_atomically


def test_write_atomically_creates_the_directory(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "art"
    write_atomically(out, lambda tmp: (tmp / "a.txt").write_text("new"))
    assert (out / "a.txt").read_text() == "new"
    assert _siblings(out.parent) == ["art"]  # no temporary directories left behind


def test_write_atomically_replaces_an_old_artifact(tmp_path: Path) -> None:
    out = tmp_path / "art"
    write_atomically(out, lambda tmp: (tmp / "manifest.json").write_text("old"))
    write_atomically(out, lambda tmp: (tmp / "new.txt").write_text("new"))
    assert _siblings(out) == ["new.txt"]
    assert _siblings(tmp_path) == ["art"]


def test_write_atomically_keeps_the_old_artifact_when_the_build_fails(tmp_path: Path) -> None:
    out = tmp_path / "art"
    write_atomically(out, lambda tmp: [(tmp / n).write_text("old") for n in ("keep.txt", "manifest.json")])

    def broken(tmp: Path) -> None:
        (tmp / "half.txt").write_text("half written")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        write_atomically(out, broken)
    assert _siblings(out) == ["keep.txt", "manifest.json"]
    assert (out / "keep.txt").read_text() == "old"
    assert _siblings(tmp_path) == ["art"]  # the half-built temporary is cleaned up


def test_write_atomically_failing_first_build_leaves_nothing(tmp_path: Path) -> None:
    def broken(tmp: Path) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        write_atomically(tmp_path / "art", broken)
    assert _siblings(tmp_path) == []


def test_write_manifest_serializes_numpy_and_paths(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"i": np.int64(3), "f": np.float32(0.5), "p": Path("/a/b")})
    assert json.loads((tmp_path / MANIFEST).read_text()) == {"i": 3, "f": 0.5, "p": "/a/b"}
    with pytest.raises(TypeError, match="object"):
        write_manifest(tmp_path, {"o": object()})


# ---------------------------------------------------------------- load


def _one_line_artifact_error(path: Path) -> str:
    with pytest.raises(ArtifactError) as info:
        load(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


def test_load_without_manifest(tmp_path: Path) -> None:
    assert "no manifest.json" in _one_line_artifact_error(tmp_path)
    assert "no manifest.json" in _one_line_artifact_error(tmp_path / "does-not-exist")


def test_load_with_bad_json(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text("{ not json\n\n")
    (tmp_path / MODEL).write_bytes(b"")
    assert "not valid JSON" in _one_line_artifact_error(tmp_path)


@pytest.mark.parametrize("fmt", [None, 0, FORMAT_VERSION + 1, "1"])
def test_load_with_wrong_format(tmp_path: Path, fmt) -> None:
    manifest = _manifest()
    if fmt is None:
        del manifest["format"]
    else:
        manifest["format"] = fmt
    _write_artifact(tmp_path, manifest)
    msg = _one_line_artifact_error(tmp_path)
    assert f"format {FORMAT_VERSION}" in msg and "recompile" in msg


def test_load_with_missing_model(tmp_path: Path) -> None:
    _write_artifact(tmp_path)
    (tmp_path / MODEL).unlink()
    assert "model.onnx is missing" in _one_line_artifact_error(tmp_path)


def test_load_a_good_artifact(tmp_path: Path) -> None:
    _write_artifact(tmp_path)
    art = load(tmp_path)
    assert art.target == "cpu"
    assert art.inputs == [TensorSpec("x", (1, 1, 4, 4))]
    assert art.outputs[0].shape == (1, 3)
    assert art.reference_path == tmp_path / MODEL
    (tmp_path / REFERENCE).write_bytes(b"")
    assert art.reference_path == tmp_path / REFERENCE
    assert isinstance(load(str(tmp_path)), Artifact)


# ---------------------------------------------------------------- as_inputs and predict


@pytest.fixture
def art(tmp_path: Path) -> Artifact:
    return Artifact(tmp_path, _manifest())


def test_as_inputs_adds_the_batch_dim_to_one_sample(art: Artifact) -> None:
    sample = np.arange(16, dtype=np.float64).reshape(1, 4, 4)
    (x,) = art.as_inputs(sample)
    assert x.shape == (1, 1, 4, 4)
    assert x.dtype == np.float32
    assert x.flags.c_contiguous
    np.testing.assert_array_equal(x[0], sample)


def test_as_inputs_keeps_a_batch(art: Artifact) -> None:
    batch = np.zeros((5, 1, 4, 4), np.float32)
    (x,) = art.as_inputs(batch)
    assert x.shape == (5, 1, 4, 4)
    (y,) = art.as_inputs([batch])
    assert y.shape == (5, 1, 4, 4)


@pytest.mark.parametrize("shape", [(5, 4, 4), (5, 1, 4, 5), (16,), (5, 4, 4, 1), (1, 1, 1, 4, 4)])
def test_as_inputs_rejects_wrong_shapes(art: Artifact, shape: tuple[int, ...]) -> None:
    with pytest.raises(AccelcError) as info:
        art.as_inputs(np.zeros(shape, np.float32))
    msg = str(info.value)
    assert "'x'" in msg and str(shape) in msg and "(N, 1, 4, 4)" in msg and "NCHW" in msg


def test_as_inputs_rejects_a_wrong_number_of_inputs(art: Artifact) -> None:
    x = np.zeros((2, 1, 4, 4), np.float32)
    with pytest.raises(AccelcError, match="takes 1 input"):
        art.as_inputs([x, x])


def test_as_inputs_with_two_inputs(tmp_path: Path) -> None:
    art = Artifact(
        tmp_path, _manifest([TensorSpec("a", (1, 3), layout="NC"), TensorSpec("b", (1, 2), layout="NC")])
    )
    a, b = art.as_inputs([np.zeros(3), np.ones((4, 2))])
    assert a.shape == (1, 3) and b.shape == (4, 2)
    with pytest.raises(AccelcError, match="'b'"):
        art.as_inputs([np.zeros(3), np.zeros(3)])


class _Echo:
    description = "echo"

    def __init__(self, n_outputs: int = 1) -> None:
        self.n_outputs = n_outputs
        self.calls: list[list[np.ndarray]] = []

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        self.calls.append(inputs)
        return [inputs[0] * (k + 1) for k in range(self.n_outputs)]


def test_predict_checks_inputs_and_unwraps_one_output(tmp_path: Path) -> None:
    runner = _Echo()
    art = Artifact(tmp_path, _manifest(), _runner=runner)
    y = art.predict(np.ones((1, 4, 4)))
    assert isinstance(y, np.ndarray) and y.shape == (1, 1, 4, 4)
    assert runner.calls[0][0].dtype == np.float32
    with pytest.raises(AccelcError):
        art.predict(np.ones((2, 2)))
    assert len(runner.calls) == 1  # a bad input never reaches the runner


def test_predict_returns_a_list_for_several_outputs(tmp_path: Path) -> None:
    art = Artifact(tmp_path, _manifest(), _runner=_Echo(2))
    ys = art.predict(np.ones((2, 1, 4, 4)))
    assert isinstance(ys, list) and len(ys) == 2
    np.testing.assert_array_equal(ys[1], 2 * np.ones((2, 1, 4, 4)))


def test_repr_names_path_and_target(art: Artifact) -> None:
    assert "cpu" in repr(art) and str(art.path) in repr(art)


def test_write_atomically_never_replaces_a_non_artifact(tmp_path: Path) -> None:
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "thesis.tex").write_text("precious")
    with pytest.raises(ArtifactError, match="not an accelc artifact"):
        write_atomically(user_dir, lambda tmp: (tmp / "x").write_text("x"))
    assert (user_dir / "thesis.tex").read_text() == "precious"
