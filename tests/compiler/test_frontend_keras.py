"""The Keras loader: .keras files and keras.Model objects through Keras's ONNX export (torch backend), inputs
channels-last; legacy .h5, a foreign backend and untrusted Lambda layers refused with what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accelc.errors import ModelLoadError
from accelc.frontend import load
from accelc.frontend.keras import import_keras, is_keras_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def _cnn(keras):
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential([keras.Input((12, 12, 1)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(),
                             L.Flatten(), L.Dense(3, activation="softmax")])


def test_a_keras_file_loads_with_channels_last_inputs(keras, tmp_path: Path) -> None:
    path = tmp_path / "cnn.keras"
    _cnn(keras).save(path)
    loaded = load(path)
    assert loaded.kind == "keras"
    assert [(s.name, s.shape, s.layout) for s in loaded.inputs] == [(loaded.inputs[0].name, (1, 12, 12, 1), "NHWC")]
    assert [(s.name, s.shape[1:], s.layout) for s in loaded.outputs] == [("output", (3,), "NC")]
    assert list(loaded.model.graph.inputs[0].shape)[1:] == [12, 12, 1]
    assert not isinstance(loaded.model.graph.inputs[0].shape[0], int)  # a free batch
    assert len(loaded.sha256) == 64 and loaded.source == str(path)


def test_a_keras_model_object_loads(keras) -> None:
    model = _cnn(keras)
    assert is_keras_model(model)
    loaded = load(model, input_shape=(2, 12, 12, 1))
    assert loaded.kind == "keras" and loaded.source == "<keras.Model Sequential>"
    assert loaded.inputs[0].shape == (2, 12, 12, 1) and loaded.inputs[0].layout == "NHWC"
    x = np.random.default_rng(0).random((2, 12, 12, 1)).astype(np.float32)
    import onnx_ir as ir
    import onnxruntime as ort

    sess = ort.InferenceSession(ir.to_proto(loaded.model).SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-5)


def test_input_shapes_are_in_the_keras_layout(keras) -> None:
    model = _cnn(keras)
    with pytest.raises(ModelLoadError, match=r"takes inputs of shape \('\?', 12, 12, 1\) \(channels-last\)"):
        load(model, input_shape=(1, 1, 12, 12))
    L = keras.layers
    open_ended = keras.Sequential([keras.Input((None, None, 2)), L.Conv2D(2, 1), L.GlobalAveragePooling2D()])
    with pytest.raises(ModelLoadError, match="channels-last layout"):
        load(open_ended)
    assert load(open_ended, input_shape=(1, 5, 7, 2)).inputs[0].shape == (1, 5, 7, 2)


def test_legacy_h5_files_are_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "old.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ModelLoadError, match=r"legacy Keras HDF5 .* save it again as \.keras"):
        load(path)


def test_a_lambda_layer_needs_trust(keras, tmp_path: Path) -> None:
    L = keras.layers
    model = keras.Sequential([keras.Input((4,)), L.Lambda(lambda t: t * 2.0), L.Dense(2)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ModelLoadError, match="trust-pickle"):
        load(path)
    assert load(path, trust_pickle=True).inputs[0].shape == (1, 4)


def test_not_a_keras_archive(tmp_path: Path) -> None:
    path = tmp_path / "junk.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="not a Keras 3 archive"):
        load(path)


def test_keras_on_another_backend_is_refused(keras, monkeypatch) -> None:
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ModelLoadError, match="already imported with the 'jax' backend.*KERAS_BACKEND=torch"):
        import_keras()


def test_torch_modules_are_not_keras_models() -> None:
    import torch

    assert not is_keras_model(torch.nn.Linear(2, 2))
    assert not is_keras_model("model.keras")


def test_loading_sets_the_backend_for_the_import_and_never_imports_tensorflow(keras, tmp_path: Path) -> None:
    """In a fresh interpreter: accelc imports keras on torch (KERAS_BACKEND is restored afterwards)."""
    path = tmp_path / "cnn.keras"
    _cnn(keras).save(path)
    code = ("import os, sys; os.environ.pop('KERAS_BACKEND', None); from accelc.frontend import load; "
            f"m = load({str(path)!r}); import keras; "
            "print(keras.backend.backend(), 'tensorflow' in sys.modules, os.environ.get('KERAS_BACKEND'), m.kind)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-4:] == ["torch", "False", "None", "keras"]
