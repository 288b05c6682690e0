"""Keras 3 sources -> ONNX: .keras files and keras.Model objects, through Keras's own ONNX export on the torch
backend (TensorFlow is neither needed nor imported).

Keras picks its backend once, when it is first imported: accelc sets KERAS_BACKEND=torch for that import, and
refuses a process that already imported keras with another backend. A .keras file is loaded with Keras's
safe_mode on (no lambda layer's pickled code is run) unless the caller says it trusts the file. Legacy HDF5 files
(.h5, Keras 2 / tf.keras) are refused with what to do. The graph keeps Keras's layout: inputs are channels-last
(NHWC), and the shapes a user gives are in that layout too.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import onnx

from accelc.errors import ModelLoadError
from accelc.frontend.common import Shapes, failing_as, first_line
from accelc.frontend.sanity import refuse_huge_shapes

BACKEND = "torch"
SHAPE_HINT = "pass --input-shape 1,28,28,1 in Keras's channels-last layout (API: input_shape=(1,28,28,1))"
H5_SUFFIXES = (".h5", ".hdf5")


def is_keras_model(obj: Any) -> bool:
    """A keras.Model (or subclass), told without importing keras: keras classes live in the keras package."""
    return "keras" in sys.modules and any(
        c.__module__ == "keras" or c.__module__.startswith("keras.") for c in type(obj).__mro__
    ) and hasattr(obj, "export")


def import_keras():
    """keras on the torch backend: KERAS_BACKEND=torch for its first import; a process with keras already on
    another backend is refused (the backend cannot change after the import)."""
    if "keras" not in sys.modules:
        previous = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = BACKEND
        try:
            with failing_as("cannot import keras on the torch backend (pip install 'keras>=3.8' torch)"):
                import keras  # noqa: F401
        finally:
            if previous is None:
                os.environ.pop("KERAS_BACKEND", None)
            else:
                os.environ["KERAS_BACKEND"] = previous
    keras = sys.modules["keras"]
    backend = keras.backend.backend() if hasattr(keras, "backend") else "unknown"
    if backend != BACKEND:
        raise ModelLoadError(
            f"keras was already imported with the '{backend}' backend; accelc exports Keras models with the torch "
            f"backend: set KERAS_BACKEND=torch before importing keras (or let accelc import it)"
        )
    return keras


def load_keras_file(path: Path, data: bytes, trust: bool) -> Any:
    """A .keras archive -> keras.Model, with safe_mode unless trusted; legacy .h5 files are refused."""
    if path.suffix.lower() in H5_SUFFIXES:
        raise ModelLoadError(
            f"{path.name} is a legacy Keras HDF5 file (Keras 2 / tf.keras); accelc reads Keras 3 .keras files (and "
            ".onnx, .pt/.pth, .pt2): load it with Keras 3 (keras.saving.load_model) and save it again as .keras "
            "(model.save('model.keras'))"
        )
    if data[:4] != b"PK\x03\x04":
        raise ModelLoadError(f"{path.name} is not a Keras 3 archive (a .keras file is a zip; truncated or corrupt?)")
    keras = import_keras()
    try:
        with _quiet():
            return keras.saving.load_model(str(path), compile=False, safe_mode=not trust)
    except Exception as e:
        if "safe_mode" in str(e):
            raise ModelLoadError(
                f"{path.name} holds a Lambda layer or other Python code; loading it runs that code: pass "
                "--trust-pickle (API: trust_pickle=True) if you trust the file"
            ) from None
        raise ModelLoadError(f"keras cannot load {path.name}: {first_line(e)}") from e


def export_keras(model: Any, shapes: Shapes, name: str) -> tuple[onnx.ModelProto, Shapes]:
    """A keras.Model -> ONNX with Keras's own export (torch backend), and its input shapes (channels-last, a
    symbolic batch reported as 1). Given shapes must agree with the model's static dims."""
    import numpy as np

    import_keras()
    declared = _declared_shapes(model, name)
    if shapes is None:
        if declared is None or any(d is None for s in declared for d in s[1:]):
            raise ModelLoadError(f"{name}: the input shape is not fully known; {SHAPE_HINT}")
        shapes = [(s[0] or 1, *s[1:]) for s in declared]
    elif declared is not None:
        if len(declared) != len(shapes):
            raise ModelLoadError(f"{name} has {len(declared)} input(s) but {len(shapes)} input shape(s) were given")
        for want, got in zip(declared, shapes, strict=True):
            if len(want) != len(got) or any(w not in (None, g) for w, g in zip(want[1:], got[1:], strict=True)):
                shown = tuple("?" if d is None else d for d in want)
                raise ModelLoadError(f"{name} takes inputs of shape {shown} (channels-last), but {got} was given")
    refuse_huge_shapes([(1, *s[1:]) for s in shapes], name)  # declared ones too, before allocating these
    samples = [np.zeros((1, *s[1:]), dtype=np.float32) for s in shapes]
    with failing_as(f"the Keras model {name} fails on input shape {shapes}"), _quiet():
        model(samples[0] if len(samples) == 1 else samples, training=False)  # Keras exports called models only
    with tempfile.TemporaryDirectory(prefix="accelc-keras-") as tmp:
        path = Path(tmp) / "model.onnx"
        with failing_as(f"keras cannot export {name} to ONNX"), _quiet():
            model.export(str(path), format="onnx", verbose=False)
        proto = onnx.load(str(path))
    _name_outputs(proto)
    return proto, shapes


def _declared_shapes(model: Any, name: str) -> list[tuple] | None:
    """The input shapes the model declares (None: unknown dims), or None for a subclassed model never built."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):  # subclassed models have no symbolic inputs
        return None
    if not inputs:
        return None
    if any(len(t.shape) == 0 for t in inputs):
        raise ModelLoadError(f"{name}: accelc supports non-scalar tensor inputs only")
    return [tuple(t.shape) for t in inputs]


def _name_outputs(proto: onnx.ModelProto) -> None:
    """Name the graph outputs 'output' ('output0', ...) like accelc's PyTorch exports (Keras numbers them), and
    their symbolic batch dim 'batch' like the inputs' (the exporter names it after the last op)."""
    outputs = proto.graph.output
    for value in outputs:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_param"):
            dims[0].dim_param = "batch"
    names = ["output"] if len(outputs) == 1 else [f"output{i}" for i in range(len(outputs))]
    taken = {o for n in proto.graph.node for o in n.output} | {i.name for i in proto.graph.input}
    if taken & (set(names) - {o.name for o in outputs}):
        return  # the names are in use inside the graph: keep Keras's
    renames = {o.name: new for o, new in zip(outputs, names, strict=True)}
    if len(set(renames)) != len(renames) or set(renames) & {i.name for i in proto.graph.input}:
        return  # an output listed twice, or an input passed through: keep Keras's names
    for node in proto.graph.node:
        for i, out in enumerate(node.output):
            if out in renames:
                node.output[i] = renames[out]
        for i, inp in enumerate(node.input):
            if inp in renames:
                node.input[i] = renames[inp]
    for value in [*proto.graph.output, *proto.graph.value_info]:
        if value.name in renames:
            value.name = renames[value.name]


@contextlib.contextmanager
def _quiet():
    """Keras and torch's exporter print tracer warnings and progress; accelc reports problems as errors."""
    from accelc.frontend.pytorch import _quiet as torch_quiet

    with torch_quiet(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
