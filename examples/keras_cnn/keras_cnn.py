"""The seed document's FPGA example, a Keras model: Conv2D(32, 3x3, relu) -> MaxPooling2D -> Flatten ->
Dense(128, relu) -> Dense(10, softmax) on 28x28x1 images (channels-last, as Keras has it).

Trained for two epochs on scikit-learn's digits (8x8, upscaled to 28x28: no download), saved as keras_cnn.keras
next to this script, then compiled by accelc for cpu and fpga and compared with Keras's own predictions.
Run from the repository root: `python examples/keras_cnn/keras_cnn.py`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on PyTorch: TensorFlow is not needed
import keras  # noqa: E402

import accelc  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SIDE = 28


def build(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    L = keras.layers
    return keras.Sequential([
        keras.Input((SIDE, SIDE, 1)),
        L.Conv2D(32, (3, 3), activation="relu"),
        L.MaxPooling2D((2, 2)),
        L.Flatten(),
        L.Dense(128, activation="relu"),
        L.Dense(10, activation="softmax"),
    ])  # fmt: skip


def digits_28x28() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits split of the other examples, upscaled (nearest) to 28x28 and channels-last (N, 28, 28, 1)."""
    sys.path.insert(0, str(ROOT))
    from examples.models import digits_split

    x_tr, y_tr, x_te, y_te = digits_split()
    rows = np.arange(SIDE) * 8 // SIDE

    def up(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x[:, 0][:, rows][:, :, rows][..., None])

    return up(x_tr), y_tr, up(x_te), y_te


def main() -> None:
    x_tr, y_tr, x_te, y_te = digits_28x28()
    model = build()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_tr, y_tr, epochs=2, batch_size=32, verbose=0)
    ref = model.predict(x_te, verbose=0)
    print(f"trained in {time.perf_counter() - start:.1f} s: Keras test accuracy {np.mean(ref.argmax(1) == y_te):.4f} "
          f"({len(x_te)} digits, 28x28x1)")
    path = HERE / "keras_cnn.keras"
    inference = build()  # the weights without the optimizer's state: a third of the file
    inference.set_weights(model.get_weights())
    inference.save(path)
    for target in ("cpu", "fpga"):
        start = time.perf_counter()
        # The training images calibrate the fpga's fixed-point ranges; the test split stays unseen.
        art = accelc.compile(path, target=target, out=ROOT / "build" / f"keras_cnn-{target}", calibration=x_tr[:256])
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        out = art.predict(x_te)  # NHWC in, as Keras takes it
        ms = (time.perf_counter() - start) * 1000 / len(x_te)
        print(f"  {target:4s}: compiled in {seconds:5.1f} s, accuracy {np.mean(out.argmax(1) == y_te):.4f}, "
              f"top-1 agreement with Keras {np.mean(out.argmax(1) == ref.argmax(1)):.4f}, "
              f"max abs error {np.max(np.abs(out - ref)):.2g}, {ms:.2f} ms per image")


if __name__ == "__main__":
    main()
