"""The artifact: a directory with manifest.json, model.onnx (and hls/ for fpga), written atomically."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from accelc.errors import AccelcError, ArtifactError, InputRangeWarning
from accelc.fpga_rules import check_engine
from accelc.spec import BatchNote, TensorSpec

log = logging.getLogger("accelc")

MANIFEST = "manifest.json"
MODEL = "model.onnx"
REFERENCE = "reference.onnx"  # the float reference, kept when user passes changed the graph
FORMAT_VERSION = 1


@dataclass
class Artifact:
    """A compiled model: `predict` runs it for real (ONNX Runtime session or hls4ml C simulation)."""

    path: Path
    manifest: dict
    _runner: object | None = field(default=None, repr=False)
    # fpga: what runs the artifact: "auto" (the numpy engine where it reproduces the project, else the C
    # simulation), "numpy" (the engine, or an error), "csim" (hls4ml's C simulation). Other targets: unused.
    engine: str = "auto"

    @property
    def target(self) -> str:
        return self.manifest["target"]["name"]

    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec.from_dict(d) for d in self.manifest["inputs"]]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec.from_dict(d) for d in self.manifest["outputs"]]

    @property
    def batch(self) -> BatchNote | None:
        """The batch the model was exported with and whether it runs any number of samples (None: a symbolic
        batch, or an artifact from before the note)."""
        return BatchNote.from_dict(self.manifest.get("batch"))

    @property
    def reference_path(self) -> Path:
        ref = self.path / REFERENCE
        return ref if ref.exists() else self.path / MODEL

    @property
    def runner(self):
        if self._runner is None:
            from accelc.backends import get_target

            self._runner = get_target(self.target).runner(self.path, self.manifest, engine=self.engine)
        return self._runner

    def as_inputs(self, x: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
        """Check and batch user inputs: each must match its input's per-sample shape (source layout). Returned in
        the compiled graph's axis order (an NHWC input whose layout Transpose was absorbed: NCHW)."""
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(xs) != len(self.inputs):
            raise AccelcError(f"the model takes {len(self.inputs)} input(s), got {len(xs)}")
        out = []
        for arr, spec in zip(xs, self.inputs):
            arr = np.asarray(arr, dtype=np.float32)
            sample = tuple(spec.shape[1:])
            if arr.shape == sample:
                arr = arr[None]  # one sample without its batch dimension
            if tuple(arr.shape[1:]) != sample:
                raise AccelcError(f"input '{spec.name}' has shape {tuple(arr.shape)}, expected (N, "
                                  f"{', '.join(map(str, sample))}) in {spec.layout} layout")
            out.append(np.ascontiguousarray(spec.to_graph(arr)))
        if out and self.batch is not None and (why := self.batch.refusal(len(out[0]))):
            raise AccelcError(why)  # every target: the fpga emulator would run it sample by sample regardless
        return out

    def predict(self, x: np.ndarray | list[np.ndarray], strict: bool = False) -> np.ndarray | list[np.ndarray]:
        """Run the artifact: arrays in the source layout (NCHW for torch models, NHWC for Keras) in and out.

        fpga: inputs beyond what their fixed-point type holds saturate; that gives an InputRangeWarning (and a
        log line), or with strict=True an AccelcError before anything runs."""
        inputs = self.as_inputs(x)
        problems = self.range_problems(inputs)
        if problems:
            message = "; ".join(problems)
            if strict:
                raise AccelcError(message)
            log.warning(message)
            warnings.warn(message, InputRangeWarning, stacklevel=2)
        ys = self.runner.run(inputs)
        return ys[0] if len(ys) == 1 else ys

    def outside_input_range(self, inputs: list[np.ndarray]) -> list[tuple[TensorSpec, np.ndarray, tuple, np.ndarray]]:
        """(spec, values, (lo, hi), mask of the values beyond it or not finite) per input whose type's range is
        known (the manifest's `input_range`, fpga)."""
        found = []
        for spec, arr, bounds in zip(self.inputs, inputs, self.manifest["target"].get("input_range") or []):
            if bounds and arr.size:
                lo, hi = bounds
                found.append((spec, arr, (lo, hi), (arr < lo) | (arr > hi) | ~np.isfinite(arr)))
        return found

    def range_problems(self, inputs: list[np.ndarray]) -> list[str]:
        """One line per input with values outside the range its type holds (the manifest's `input_range`)."""
        problems = []
        for spec, arr, (lo, hi), mask in self.outside_input_range(inputs):
            outside = int(np.count_nonzero(mask))
            if outside:
                largest = float(np.max(np.abs(arr[np.isfinite(arr)]))) if np.isfinite(arr).any() else float("inf")
                problems.append(
                    f"{outside} of {arr.size} values of input '{spec.name}' are outside [{lo:g}, {hi:g}], the range "
                    f"its fixed-point type holds (largest |value| {largest:.4g}): they saturate, so the outputs are "
                    "off; recompile with calibration data of the real range (--calibration/--dataset)")
        return problems

    def __repr__(self) -> str:
        return f"Artifact({str(self.path)!r}, target={self.target!r})"


def load(path: str | Path, engine: str | None = None) -> Artifact:
    """Open an artifact directory written by `accelc compile`. `engine` (fpga): "auto" (default: the numpy
    engine, bit-exact with the C simulation, where it implements every layer), "numpy" or "csim"."""
    engine = check_engine(engine)
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise ArtifactError(f"{path} is not an accelc artifact (no {MANIFEST}); compile a model into it first")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{manifest_path} is not valid JSON ({e}); recompile the artifact") from e
    if manifest.get("format") != FORMAT_VERSION:
        raise ArtifactError(f"{path} was written in artifact format {manifest.get('format')}, "
                            f"this accelc reads format {FORMAT_VERSION}; recompile it")
    if not (path / MODEL).exists():
        raise ArtifactError(f"{path} is incomplete: {MODEL} is missing; recompile it")
    return Artifact(path, manifest, engine=engine)


def write_atomically(out: Path, build: Callable[[Path], None]) -> None:
    """Build the artifact in a temporary sibling, then swap it in: a good artifact is never half-replaced."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and ((out / MANIFEST).exists() or not any(out.iterdir()))):
        # Only an earlier artifact (or an empty directory) may be replaced, never a user's files.
        what = "a file" if not out.is_dir() else "a directory that is not an accelc artifact"
        raise ArtifactError(f"output path {out} is {what}; refusing to replace it, choose another -o")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; an artifact should follow the umask
    try:
        build(tmp)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_manifest(directory: Path, manifest: dict) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
