"""End to end, Keras 3: the seed's Keras CNN (Sequential) and a functional model (Conv2D / BatchNormalization /
ReLU / GlobalAveragePooling2D / Dropout / Dense), from .keras files and keras.Model objects, for cpu and fpga,
against Keras's own predictions on NHWC inputs. The artifacts take and return Keras's layout.

Two fpga builds (each ~10-40 s): the seed CNN through the CLI, the functional model through the API.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from _cli import accelc_command

import accelc
from accelc.frontend.keras import import_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

SAMPLES = 64
AGREEMENT = 0.98
CPU_ATOL, FPGA_ATOL = 1e-4, 0.05


def seed_cnn():
    """The seed document's FPGA example: Conv2D(32, 3x3, relu) -> MaxPooling2D -> Flatten -> Dense(128, relu) ->
    Dense(10, softmax) on 28x28x1."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, (3, 3), activation="relu"), L.MaxPooling2D(),
                             L.Flatten(), L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")])


def functional_cnn():
    keras = import_keras()
    keras.utils.set_random_seed(1)
    L = keras.layers
    inp = keras.Input((16, 16, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(inp)))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, strides=2, padding="same")(x)))
    x = L.Dense(10, activation="softmax")(L.Dropout(0.3)(L.GlobalAveragePooling2D()(x)))
    model = keras.Model(inp, x, name="functional_cnn")
    for layer in model.layers:  # BatchNorm statistics other than 0/1, as after training
        if isinstance(layer, L.BatchNormalization):
            rng = np.random.default_rng(2)
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2, n).astype("float32"))
    return model


def images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((SAMPLES, *shape)).astype(np.float32)


def check(art, want: np.ndarray, x: np.ndarray, atol: float) -> dict:
    got = art.predict(x)
    assert got.shape == want.shape
    err = float(np.max(np.abs(got - want)))
    agreement = float(np.mean(got.argmax(1) == want.argmax(1)))
    assert err < atol, err
    assert agreement >= AGREEMENT, agreement
    return {"max_abs_err": err, "agreement": agreement}


def check_interface(art, shape: tuple[int, ...]) -> None:
    (spec,) = art.inputs
    assert (spec.shape[1:], spec.layout, spec.perm) == (shape, "NHWC", (0, 3, 1, 2))
    assert art.manifest["source"]["kind"] == "keras"
    graph = onnx.load(str(art.path / "model.onnx")).graph
    assert "Transpose" not in {n.op_type for n in graph.node}  # every layout Transpose absorbed or cancelled
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim][1:] == [shape[2], shape[0], shape[1]]


@pytest.mark.slow
def test_seed_cnn_keras_file_via_the_cli_for_fpga_and_the_api_for_cpu(tmp_path: Path) -> None:
    model = seed_cnn()
    path = tmp_path / "cnn.keras"
    model.save(path)
    x = images((28, 28, 1))
    want = model.predict(x, verbose=0)
    out = tmp_path / "cnn-fpga"
    proc = subprocess.run([*accelc_command(), "compile", str(path), "--target", "fpga", "-o", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    art = accelc.load(out)
    check_interface(art, (28, 28, 1))
    check(art, want, x, FPGA_ATOL)
    assert art.predict(x[0]).shape == (1, 10)  # one NHWC sample without its batch axis
    with pytest.raises(accelc.AccelcError, match=r"expected \(N, 28, 28, 1\) in NHWC layout"):
        art.predict(x.transpose(0, 3, 1, 2))
    cpu = accelc.compile(path, target="cpu", out=tmp_path / "cnn-cpu")
    check_interface(cpu, (28, 28, 1))
    check(cpu, want, x, CPU_ATOL)
    canonical = [r["name"] for r in cpu.manifest["canonicalize"] if r["modified"]]
    assert {"exporter-cleanup", "absorb-input-layout", "transpose-into-dense"} <= set(canonical)


def test_seed_cnn_object_for_cpu(tmp_path: Path) -> None:
    model = seed_cnn()
    x = images((28, 28, 1), seed=1)
    art = accelc.compile(model, target="cpu", out=tmp_path / "cnn-cpu")
    check_interface(art, (28, 28, 1))
    check(art, model.predict(x, verbose=0), x, CPU_ATOL)
    assert art.manifest["source"]["path"] == "<keras.Model Sequential>"


@pytest.mark.slow
def test_functional_model_object_for_fpga_and_keras_file_for_cpu(tmp_path: Path) -> None:
    model = functional_cnn()
    x = images((16, 16, 3), seed=2)
    want = np.asarray(model(x, training=False).detach().cpu().numpy())
    art = accelc.compile(model, target="fpga", out=tmp_path / "func-fpga", calibration=x)
    check_interface(art, (16, 16, 3))
    check(art, want, x, FPGA_ATOL)
    path = tmp_path / "func.keras"
    model.save(path)
    cpu = accelc.compile(path, target="cpu", out=tmp_path / "func-cpu")
    check_interface(cpu, (16, 16, 3))
    check(cpu, want, x, CPU_ATOL)
    manifest = json.loads((cpu.path / "manifest.json").read_text())
    assert manifest["inputs"][0]["perm"] == [0, 3, 1, 2] and manifest["inputs"][0]["shape"] == [1, 16, 16, 3]
